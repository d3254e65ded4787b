"""The ASGI application: /graphql (GraphiQL on GET), /healthz, /readyz and /metrics."""

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
import structlog
from cross_web import HTTPException
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import SpanKind, TracerProvider
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from clientdesk import metrics, tracing
from clientdesk.settings import Settings, get_settings
from db.session import SharedSession, create_engine, create_sessionmaker
from gql.cabinet import session_info, set_password
from gql.compiled import CompiledOperations
from gql.context import Context
from gql.limits import Limits
from gql.schema import build_schema, schema
from services import auth, idempotency, mail
from services.clock import Clock, system_clock
from services.ratelimit import DatabaseRateLimiter, RateLimiter, RedisRateLimiter

log = structlog.get_logger("clientdesk.http")


class GraphQLView(GraphQL):
    """Strawberry's ASGI view, answering with orjson."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def graphql_endpoint(request: Request) -> Response:
    state = request.app.state
    # an operation, counted in the metrics (RequestContextMiddleware); not GraphiQL's page
    request.state.graphql = request.method == "POST" or "query" in request.query_params
    settings: Settings = state.settings
    declared = request.headers.get("content-length", "0")
    if (declared.isdigit() and int(declared) > settings.max_body_bytes) or (
        len(await request.body()) > settings.max_body_bytes
    ):
        return JSONResponse(
            {
                "errors": [
                    {
                        "message": f"The request body is larger than {settings.max_body_bytes} "
                        "bytes.",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            },
            status_code=413,
        )
    tracer = state.tracer
    if tracer is None:
        return await answer(request, state)
    with tracer.start_as_current_span("POST /graphql", kind=SpanKind.SERVER) as span:
        response = await answer(request, state)
        span.set_attribute("http.response.status_code", response.status_code)
        span.set_attribute("clientdesk.request_id", request.state.request_id)
        span.set_attribute(
            "graphql.operation.name", getattr(request.state, "operation", None) or ""
        )
        return response


async def answer(request: Request, state: Any) -> Response:
    db = SharedSession(state.sessionmaker)
    context: Context | None = None
    try:
        context = await build_context(request, db, state)
        compiled = await state.compiled.respond(request, context) if state.compiled else None
        response: Response = compiled or await state.graphql_view.run(request, context=context)
    except HTTPException as error:
        response = PlainTextResponse(error.reason, status_code=error.status_code)
    finally:
        await db.finish()
    if context is None:  # the view refused the HTTP request itself
        return response
    note_request(request, context, response.status_code)
    if context.retry_after is not None:
        response.status_code = 429
        response.headers["Retry-After"] = str(max(1, math.ceil(context.retry_after)))
    elif GRAPHQL_RESPONSE in request.headers.get("accept", "") and response.status_code == 200:
        response = graphql_response(response, request_error=context.request_error)
    return response


def note_request(request: Request, context: Context, status: int) -> None:
    """What the request's log line and the metrics say about it (RequestContextMiddleware;
    a request that ended in an exception is counted there by its status)."""
    noted = request.state
    noted.operation = context.operation_name
    noted.error_codes = context.error_codes
    noted.viewer_id = context.viewer.staff_id if context.viewer else None
    noted.trusted = context.viewer is not None
    if context.retry_after is not None:
        noted.outcome = "rate_limited"
    elif context.request_error or status >= 400:
        noted.outcome = "rejected"
    elif context.error_codes:
        noted.outcome = "error"
    else:
        noted.outcome = "ok"


GRAPHQL_RESPONSE = "application/graphql-response+json"


def graphql_response(response: Response, *, request_error: bool) -> Response:
    """The GraphQL-over-HTTP media type, for callers that ask for it: a request that could not
    run is a 400 without `data` (with application/json it stays 200)."""
    if not request_error:
        response.headers["content-type"] = GRAPHQL_RESPONSE
        return response
    body = orjson.loads(response.body)
    body.pop("data", None)
    return Response(orjson.dumps(body), status_code=400, media_type=GRAPHQL_RESPONSE)


async def build_context(request: Request, db: SharedSession, state: Any) -> Context:
    """The request's context: it authenticates the bearer token, if one was sent."""
    settings: Settings = state.settings
    clock: Clock = state.clock
    now = clock()
    token = bearer_token(request)
    viewer = (
        await auth.authenticate(db, token=token, now=now, cache=state.token_cache)
        if token
        else None
    )
    return Context(
        request=request,
        request_id=request.state.request_id,
        db=db,
        settings=settings,
        clock=clock,
        viewer=viewer,
        credentials_given=token is not None,
        now=now,
        limits=state.limits,
        rate_limiter=state.rate_limiter.bound(db.exclusive),
        client_address=request.client.host if request.client else "unknown",
    )


async def healthz(request: Request) -> Response:
    """The process is up (for liveness probes; does not touch the database)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database answers (for readiness probes and load balancers)."""
    state = request.app.state
    engine: AsyncEngine = state.engine
    try:
        async with asyncio.timeout(state.settings.readiness_timeout_seconds):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("not_ready", error=type(error).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics (clientdesk/metrics.py)."""
    expected = request.app.state.settings.metrics_token
    if expected is not None and not secrets.compare_digest(
        (bearer_token(request) or "").encode(), expected.get_secret_value().encode()
    ):
        return PlainTextResponse("A bearer token is needed.", status_code=401)
    body, media_type = metrics.exposition()
    return Response(body, media_type=media_type)


class RequestContextMiddleware:
    """Give every request an id (or keep the caller's X-Request-ID), log it once when done."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            given if 0 < len(given) <= 64 and given.isprintable() else secrets.token_hex(16)
        )
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            noted = scope["state"]
            if noted.get("graphql"):
                metrics.observe_graphql(
                    operation=noted.get("operation"),
                    trusted=noted.get("trusted", False),
                    outcome=noted.get("outcome", "rejected" if status < 500 else "error"),
                    error_codes=noted.get("error_codes", ()),
                    seconds=seconds,
                )
            if self.access_log:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    **(
                        {"operation": noted.get("operation"), "viewer_id": noted.get("viewer_id")}
                        if noted.get("graphql")
                        else {}
                    ),
                )
            structlog.contextvars.unbind_contextvars("request_id")


def smtp_of(settings: Settings) -> mail.Smtp:
    return mail.Smtp(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        tls=settings.smtp_tls,
    )


async def run_background_jobs(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
    stop: asyncio.Event,
) -> None:
    """Every few seconds until `stop` is set: deliver the outbox, forget expired idempotency
    keys. Safe in every process at once (outbox rows are claimed with SKIP LOCKED)."""
    smtp = smtp_of(settings)
    while not stop.is_set():
        try:
            await mail.deliver_due(
                sessions, smtp=smtp, now=clock(), max_attempts=settings.mail_max_attempts
            )
            async with sessions() as session, session.begin():
                await idempotency.forget_expired(session, now=clock())
        except Exception:  # the loop must outlive a bad pass; the error is logged
            log.exception("background_jobs_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.mail_poll_seconds)


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    clock: Clock = system_clock,
    rate_limiter: RateLimiter | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """The application; tests pass their own engine, sessionmaker, clock, rate limiter and
    tracer provider."""
    settings = settings or get_settings()
    owns_engine = engine is None
    engine = engine or create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    metrics.instrument_pool(engine)
    owns_tracing = tracer_provider is None
    tracer_provider = tracer_provider or tracing.tracer_provider(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        sender = (
            asyncio.create_task(run_background_jobs(app.state.sessionmaker, settings, clock, stop))
            if settings.mail_sender
            else None
        )
        yield
        stop.set()
        if sender is not None:
            await sender
        await app.state.rate_limiter.close()
        if owns_engine:
            await engine.dispose()
            metrics.process_ended()
        if owns_tracing and isinstance(tracer_provider, SdkTracerProvider):
            tracer_provider.shutdown()  # sends the spans still in the batch

    app = Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *([Route("/metrics", metrics_endpoint, methods=["GET"])] if settings.metrics else []),
            Route("/cabinet/set-password", set_password, methods=["POST"]),
            Route("/cabinet/session", session_info, methods=["GET"]),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(RequestContextMiddleware, access_log=settings.access_log),
            *(  # no origins, no CORS: browsers keep other sites' pages out by default
                [
                    Middleware(
                        CORSMiddleware,
                        allow_origins=settings.cors_origins,
                        allow_methods=["GET", "POST"],
                        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                        expose_headers=["X-Request-ID", "Retry-After"],
                        max_age=600,
                    )
                ]
                if settings.cors_origins
                else []
            ),
        ],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker or create_sessionmaker(engine)
    app.state.clock = clock
    app.state.token_cache = auth.TokenCache(timedelta(seconds=settings.token_cache_seconds))
    app.state.limits = Limits(
        max_tokens=settings.max_query_tokens,
        anonymous_max_tokens=settings.anonymous_max_query_tokens,
        max_expensive_fields=settings.max_expensive_fields,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_directives=settings.max_query_directives,
        max_nodes=settings.max_query_nodes,
    )
    app.state.rate_limiter = rate_limiter or (
        RedisRateLimiter(settings.redis_url, prefix=f"{settings.redis_key_prefix}ratelimit:")
        if settings.redis_url
        else DatabaseRateLimiter(app.state.sessionmaker)
    )
    app.state.compiled = (
        CompiledOperations(schema, app.state.limits, settings)
        if settings.compiled_operations
        else None
    )
    app.state.tracer = tracer_provider.get_tracer("clientdesk") if tracer_provider else None
    app.state.graphql_view = GraphQLView(
        build_schema(tracer_provider=tracer_provider) if tracer_provider else schema,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
    )
    return app


def create_production_app() -> Any:
    """Entry point for `uvicorn --factory gql.app:create_production_app` (logging set up)."""
    from clientdesk.logs import configure_logging

    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return create_app(settings)
