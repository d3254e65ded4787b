"""The ASGI application: /graphql (GraphiQL on GET), /healthz, /readyz and /metrics."""

import asyncio
import contextlib
import gc
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
import structlog
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import SpanKind, TracerProvider
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as RoutingError
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import InvalidOperationTypeError

from clientdesk import metrics, tracing
from clientdesk.settings import Settings, get_settings
from db.session import SharedSession, create_engine, create_sessionmaker, is_sqlite
from gql import documents
from gql.cabinet import session_info, set_password
from gql.compiled import CompiledOperations
from gql.context import Context
from gql.export import clients_csv, ledger_csv
from gql.guards import (
    BodyLimit,
    BodyTooLarge,
    SecurityHeaders,
    check_graphql_request,
    json_object,
    safe_request_id,
)
from gql.limits import Limits
from gql.scalars import encode_response
from gql.schema import build_schema, schema
from services import auth, deletion, idempotency, mail
from services.clock import Clock, system_clock
from services.documents import DocumentRegistry
from services.jobs import Jobs
from services.jobs import background as background_worker
from services.ratelimit import DatabaseRateLimiter, RateLimiter, RedisRateLimiter

log = structlog.get_logger("clientdesk.http")


class RequestAdapter(StarletteRequestAdapter):
    """Strawberry's view of the Starlette request, keeping the request itself at hand."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.request = request


class GraphQLView(GraphQL):
    """Strawberry's ASGI view, reading and answering with orjson; what is not a JSON object
    (or nests too deep) is an HTTP 400, as is anything else the view refuses (see `answer`).
    A trusted document sent by id runs as if its text had been sent (gql/documents.py)."""

    request_adapter_class = RequestAdapter

    def encode_json(self, data: object) -> bytes:
        return encode_response(data)

    def decode_json(self, data: str | bytes) -> object:
        return json_object(data, what="The request body")

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if parsed.get(name):
                parsed[name] = json_object(parsed[name], what=f"The `{name}` parameter")
        return parsed

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return "documentId" not in request.query_params and super().should_render_graphql_ide(
            request
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(request, RequestAdapter) and isinstance(data, GraphQLRequestData):
            data.query = documents.sent_document(request.request) or data.query
        return data

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError):  # a mutation by GET
                raise HTTPException(405, "Send mutations with POST.") from None
            raise


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def graphql_endpoint(request: Request) -> Response:
    state = request.app.state
    # an operation, counted in the metrics (RequestContextMiddleware); not GraphiQL's page
    request.state.graphql = request.method == "POST" or bool(
        {"query", "documentId"} & request.query_params.keys()
    )
    try:  # a malformed request costs no token lookup
        if request.method == "POST":
            await check_post(request)
        else:
            documents.check_document_parameters(request.query_params)
    except HTTPException as error:
        return http_error(request, error.status_code, error.reason)
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


async def check_post(request: Request) -> None:
    """A POSTed operation is one JSON object with the parameters' types; else an HTTP 400.
    Its body is read here (BodyLimit stops it at the limit), before the compiled path and
    the view read it again."""
    body = await request.body()
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(
            400, "Send the operation as JSON (Content-Type: application/json), or by GET."
        )
    payload = json_object(body, what="The request body")
    check_graphql_request(payload)
    documents.check_document_parameters(payload)
    request.state.parameters = payload


async def answer(request: Request, state: Any) -> Response:
    db = SharedSession(state.sessionmaker)
    context: Context | None = None
    try:
        context = await build_context(request, db, state)
        parameters = request.state.parameters if request.method == "POST" else request.query_params
        response: Response | None = await documents.resolve(
            request, parameters, context, state.documents
        )
        if response is None:
            compiled = await state.compiled.respond(request, context) if state.compiled else None
            response = compiled or await state.graphql_view.run(request, context=context)
    except HTTPException as error:  # the view refused the HTTP request: no GraphQL ran
        allow = {"Allow": "GET, POST"} if error.status_code == 405 else None
        response = http_error(request, error.status_code, error.reason, allow)
    finally:
        await db.finish()
    if context is None:  # the view refused the HTTP request itself
        return response
    note_request(request, context, response.status_code)
    if context.retry_after is not None:
        response.status_code = 429
        # rounded first: 12.000000000000002 s of float noise is 12 s, not 13
        response.headers["Retry-After"] = str(max(1, math.ceil(round(context.retry_after, 3))))
    elif GRAPHQL_RESPONSE in request.headers.get("accept", "") and response.status_code == 200:
        response = graphql_response(
            response,
            request_error=context.request_error,
            unauthenticated=context.viewer is None and context.error_codes == ("UNAUTHENTICATED",),
        )
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


def graphql_response(response: Response, *, request_error: bool, unauthenticated: bool) -> Response:
    """The GraphQL-over-HTTP media type, for callers that ask for it: a request that could not
    run is a 400 without `data`, one refused for want of a valid token a 401 (with
    application/json both stay 200)."""
    if not (request_error or unauthenticated):
        response.headers["content-type"] = GRAPHQL_RESPONSE
        return response
    body = orjson.loads(response.body)
    body.pop("data", None)
    if request_error:
        return Response(orjson.dumps(body), status_code=400, media_type=GRAPHQL_RESPONSE)
    reason = body["errors"][0]["extensions"].get("reason", "missing")
    challenge = "Bearer" if reason == "missing" else 'Bearer error="invalid_token"'
    return Response(
        orjson.dumps(body),
        status_code=401,
        media_type=GRAPHQL_RESPONSE,
        headers={"WWW-Authenticate": challenge},
    )


# The code of each HTTP error a route answers before any GraphQL runs.
HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    500: "INTERNAL_SERVER_ERROR",
}


def http_error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An HTTP error with a code: GraphQL's shape (`errors[].extensions.code`) on /graphql,
    the cabinet's (`error.code`) elsewhere."""
    code = HTTP_ERROR_CODES.get(status, "BAD_REQUEST")
    if request.scope["path"] == "/graphql":
        body: dict[str, Any] = {"errors": [{"message": message, "extensions": {"code": code}}]}
    else:
        body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def routing_error(request: Request, error: Exception) -> Response:
    """A path nothing serves (404), or a method its route does not take (405)."""
    assert isinstance(error, RoutingError)
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        return http_error(request, 405, f"Use {allowed}.", {"Allow": allowed})
    if error.status_code == 404:
        return http_error(request, 404, "Nothing is served at this address.")
    return http_error(request, error.status_code, "The request cannot be served.")


async def body_too_large(request: Request, error: Exception) -> Response:
    """413 for a body past CLIENTDESK_MAX_BODY_BYTES; the connection closes, so that the rest
    of the body is not read either."""
    return http_error(request, 413, str(error), {"Connection": "close"})


async def internal_error(request: Request, error: Exception) -> Response:
    """An unexpected failure outside GraphQL's error masking (a lost database, say): logged in
    full under the request id, answered with the id and nothing of the failure. It is sent
    from outside the other middleware, so it brings their headers itself."""
    request_id = getattr(request.state, "request_id", None) or secrets.token_hex(16)
    log.error("request_failed", request_id=request_id, exc_info=error)
    return http_error(
        request,
        500,
        f"Internal server error. Quote request id {request_id} when reporting it.",
        {
            "X-Request-ID": request_id,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


async def build_context(request: Request, db: SharedSession, state: Any) -> Context:
    """The request's context: it authenticates the bearer token, if one was sent."""
    settings: Settings = state.settings
    clock: Clock = state.clock
    now = clock()
    token = bearer_token(request)
    found = (
        await auth.authenticate(db, token=token, now=now, cache=state.token_cache)
        if token
        else None
    )
    viewer = found if isinstance(found, auth.Viewer) else None
    return Context(
        request=request,
        request_id=request.state.request_id,
        db=db,
        settings=settings,
        clock=clock,
        viewer=viewer,
        token_refusal=found if isinstance(found, auth.TokenRefusal) else None,
        now=now,
        limits=state.limits,
        rate_limiter=state.rate_limiter.bound(db.exclusive),
        client_address=request.client.host if request.client else "unknown",
        jobs=state.jobs,
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
        return http_error(
            request,
            401,
            "Send the metrics token: Authorization: Bearer <token>.",
            {"WWW-Authenticate": "Bearer"},
        )
    body, media_type = metrics.exposition()
    return Response(body, media_type=media_type)


class RequestContextMiddleware:
    """Give every request an id (or keep the caller's X-Request-ID if it is a safe one: 1-64 of
    letters, digits and `._:-`), log it once when done."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if safe_request_id(given) else secrets.token_hex(16)
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
    """Every few seconds until `stop` is set: deliver the outbox (where this process sends
    mail, CLIENTDESK_MAIL_SENDER), forget expired idempotency keys, purge the deleted clients
    whose retention period is over. Safe in every process at
    once (outbox rows are claimed with SKIP LOCKED)."""
    smtp = smtp_of(settings)
    while True:  # a pass first, then a wait, until stopped
        try:
            if settings.mail_sender:
                await mail.deliver_due(
                    sessions, smtp=smtp, now=clock(), max_attempts=settings.mail_max_attempts
                )
            async with sessions() as session, session.begin():
                await idempotency.forget_expired(session, now=clock())
            await deletion.purge_expired(
                sessions, now=clock(), retention=timedelta(days=settings.deleted_retention_days)
            )
        except Exception:  # the loop must outlive a bad pass; the error is logged
            log.exception("background_jobs_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.mail_poll_seconds)
        if stop.is_set():
            return


# The young generation is collected every GC_THRESHOLDS[0] container allocations (not 700),
# the older ones less often too: a request allocates and frees thousands, nearly all by
# reference counting, so most collections found nothing.
GC_THRESHOLDS = (10_000, 20, 20)


def settle_heap() -> None:
    """After startup (each worker, from the lifespan): move what startup built (modules, the
    schema, the settings, alive until the process ends) out of the cyclic collector's sight,
    so a full collection walks only what requests made (it walked ~160,000 objects, holding
    the event loop for tens of milliseconds, hundreds on a busy machine: the p99 tail at 32
    connections), and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    clock: Clock = system_clock,
    rate_limiter: RateLimiter | None = None,
    tracer_provider: TracerProvider | None = None,
    jobs: Jobs | None = None,
) -> Starlette:
    """The application; tests pass their own engine, sessionmaker, clock, rate limiter,
    tracer provider and job queue."""
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
        jobs = asyncio.create_task(
            run_background_jobs(app.state.sessionmaker, settings, clock, stop)
        )
        lag = asyncio.create_task(metrics.watch_event_loop()) if settings.metrics_enabled else None
        queue: Jobs = app.state.jobs
        in_process = settings.jobs_in_process
        if in_process is None:
            in_process = queue.in_memory
        worker = background_worker(queue) if in_process else None
        settle_heap()
        yield
        stop.set()
        await jobs
        if worker is not None:
            queue.stop(worker)  # a running job stops after its chunk
            try:
                await worker
            except asyncio.CancelledError:
                pass
            except Exception:  # (the rest of the shutdown still runs)
                log.exception("job_worker_failed")
        await queue.close()
        if lag is not None:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
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
            *(
                [Route("/metrics", metrics_endpoint, methods=["GET"])]
                if settings.metrics_enabled
                else []
            ),
            Route("/cabinet/set-password", set_password, methods=["POST"]),
            Route("/export/clients.csv", clients_csv, methods=["GET", "POST"]),
            Route("/export/clients/{client_id}/ledger.csv", ledger_csv, methods=["GET"]),
            Route("/cabinet/session", session_info, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={
            RoutingError: routing_error,
            BodyTooLarge: body_too_large,
            Exception: internal_error,
        },
        middleware=[
            Middleware(RequestContextMiddleware, access_log=settings.access_log),
            Middleware(SecurityHeaders),
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
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        ],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker or create_sessionmaker(engine)
    app.state.clock = clock
    app.state.jobs = jobs or Jobs(
        app.state.sessionmaker,
        clock,
        database_url=None if is_sqlite(settings.database_url) else settings.database_url,
        chunk=settings.bulk_job_chunk,
        parallel=settings.bulk_job_parallel,
    )
    app.state.documents = DocumentRegistry()
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
    auth.configure_password_hasher(**settings.password_hashing)
    return create_app(settings)
