"""HTTP endpoints for the client cabinet (the clients' own app), outside the staff GraphQL API."""

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from db.session import transaction
from services import cabinet
from services.errors import DomainError, ValidationFailed
from services.login_details import set_password_with_token
from services.money import quantum

MAX_BODY = 16 * 1024


def _error(code: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def set_password(request: Request) -> Response:
    """POST {"token", "password"}: spend a one-time link from a login e-mail on a password."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _error("UNSUPPORTED_MEDIA_TYPE", "Send JSON (application/json).", 415)
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error("PAYLOAD_TOO_LARGE", "The body is too large.", 413)
    try:
        payload = orjson.loads(body)
        token, password = payload["token"], payload["password"]
        if not isinstance(token, str) or not isinstance(password, str):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _error("BAD_REQUEST", 'Send {"token": "…", "password": "…"}.')
    state = request.app.state
    async with state.sessionmaker() as session:
        try:
            async with transaction(session):
                client = await set_password_with_token(
                    session,
                    token=token,
                    password=password,
                    now=state.clock(),
                    min_score=state.settings.password_min_score,
                )
        except DomainError as error:
            return _error(error.code.value, error.message)
        except ValidationFailed as failed:
            first = failed.errors[0]
            return _error(first.code.value, first.message)
    return JSONResponse({"login": client.login, "passwordSet": True})


async def open_cabinet(request: Request) -> cabinet.OpenCabinet | Response:
    """The cabinet session of a request (`Authorization: Bearer <token from
    clientImpersonate>`), checked now; or the 401 that refuses it: every cabinet route that
    acts for a client starts here."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error("UNAUTHENTICATED", "Send Authorization: Bearer <cabinet token>.", 401)
    state = request.app.state
    async with state.sessionmaker() as session:
        try:
            return await cabinet.open_session(
                session, token=token.strip(), secret=state.settings.signing_key, now=state.clock()
            )
        except cabinet.SessionEnded as ended:
            return JSONResponse(
                {
                    "error": {
                        "code": ended.code.value,
                        "message": ended.message,
                        "reason": ended.reason.value,
                    }
                },
                status_code=401,
            )
        except DomainError as error:
            return _error(error.code.value, error.message, 401)


async def session_info(request: Request) -> Response:
    """GET with `Authorization: Bearer <token from clientImpersonate>`: who the cabinet is
    open for, and for whom (401 for a tampered, foreign or expired token, and for a session
    that has ended: `SESSION_ENDED` with a `reason`)."""
    opened = await open_cabinet(request)
    if isinstance(opened, Response):
        return opened
    client = opened.client
    return JSONResponse(
        {
            "client": {
                "login": client.login,
                "name": client.name,
                "currency": client.currency,
                "balance": str(client.balance.quantize(quantum(client.currency))),
                "language": client.language,
            },
            "impersonatedBy": opened.impersonated_by,
            "expiresAt": opened.expires_at.isoformat(),
        }
    )
