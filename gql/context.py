"""The per-request context every resolver receives."""

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import strawberry
from starlette.requests import Request

from clientdesk.settings import Settings
from db.session import SharedSession
from gql.loaders import Loaders
from services.auth import Viewer
from services.clock import Clock


@dataclass(slots=True)
class Context:
    """One request: its HTTP request, database session, viewer, loaders and clock."""

    request: Request
    request_id: str
    db: SharedSession  # the request's database session (see SharedSession)
    settings: Settings
    clock: Clock
    viewer: Viewer | None
    credentials_given: bool  # a token was sent (even if it turned out invalid)
    loaders: Loaders
    now: datetime  # one instant for the whole request, so every field agrees on "expired"


Info: TypeAlias = strawberry.Info[Context, None]
