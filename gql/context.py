"""The per-request context every resolver receives."""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias

import strawberry
from starlette.requests import Request

from clientdesk.settings import Settings
from db.session import SharedSession
from gql.limits import Limits
from gql.loaders import Loaders, create_loaders
from services.auth import TokenRefusal, Viewer
from services.clock import Clock
from services.jobs import Jobs
from services.ratelimit import RateLimiter

if TYPE_CHECKING:
    from gql.throttling import Cost


@dataclass(slots=True)
class Context:
    """One request: its HTTP request, database session, viewer, loaders and clock."""

    request: Request
    request_id: str
    db: SharedSession  # the request's database session (see SharedSession)
    settings: Settings
    clock: Clock
    viewer: Viewer | None
    now: datetime  # one instant for the whole request, so every field agrees on "expired"
    limits: Limits
    rate_limiter: RateLimiter
    client_address: str
    token_refusal: TokenRefusal | None = None  # why the token sent stands for no viewer
    jobs: "Jobs | None" = None  # the job queue (services/jobs.py)
    cost: "Cost | None" = None  # set before execution (gql/throttling.py)
    retry_after: float | None = None  # set when the rate limit refused the request
    request_error: bool = False  # set when nothing ran because the request was malformed
    operation_name: str | None = None  # for the log line and metrics (gql/observability.py)
    error_codes: tuple[str, ...] = ()  # the response's errors' codes, likewise
    _loaders: Loaders | None = None

    @property
    def hide_suggestions(self) -> bool:
        """Errors leave out "Did you mean …?" hints: they name parts of the schema, which only
        staff allowed to introspect it may see."""
        return self.viewer is None or not self.settings.introspection_enabled

    @property
    def loaders(self) -> Loaders:
        """The request's dataloaders, made when a resolver first needs one (the compiled
        path never does)."""
        if self._loaders is None:
            self._loaders = create_loaders(self.db)
        return self._loaders

    def forget_loaded(self) -> None:
        """Forget what the loaders hold (after a change), if any were made."""
        if self._loaders is not None:
            self._loaders.clear_all()


Info: TypeAlias = strawberry.Info[Context, None]
