"""The `clientdesk` command: serve, migrate, seed demo data, manage staff, tokens and trusted
documents."""

import asyncio
import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from clientdesk.settings import get_settings
from db.enums import StaffRole, TokenKind
from db.models import ApiToken
from db.session import create_engine, create_sessionmaker
from services import auth
from services.clock import system_clock
from services.errors import DomainError

T = TypeVar("T")

# Numbers the commands take: anything outside is refused with a usage error (exit code 2).
PORT = click.IntRange(1, 65535)
WORKERS = click.IntRange(1, 256)
DEMO_CLIENTS = click.IntRange(1, 10_000_000)
TOKEN_DAYS = click.IntRange(1, 3650)  # ten years; a token that should never expire takes none


def run_with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on the configured database."""

    async def main() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except DomainError as error:
        raise click.ClickException(error.message) from None


@click.group()
def main() -> None:
    """Clientdesk: a GraphQL API for back-office client account management."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default: settings, 127.0.0.1).")
@click.option("--port", type=PORT, default=None, help="Port (default: settings, 8000).")
@click.option(
    "--workers", type=WORKERS, default=1, show_default=True, help="Worker processes (one per core)."
)
@click.option("--reload", is_flag=True, help="Restart on code changes (development only).")
def serve(host: str | None, port: int | None, workers: int, reload: bool) -> None:
    """Serve the API (GraphiQL at /graphql).

    On SIGTERM or Ctrl-C the server stops accepting connections, lets the requests in flight
    finish (up to CLIENTDESK_SHUTDOWN_TIMEOUT_SECONDS) and exits.
    """
    import uvicorn

    from clientdesk.logs import configure_logging
    from clientdesk.metrics import MULTIPROCESS_DIR
    from clientdesk.protocol import BoundedHttpToolsProtocol
    from clientdesk.workers import serve_workers

    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    host = host or settings.host
    port = port or settings.port
    click.echo(f"GraphiQL: http://{host}:{port}/graphql", err=True)
    with contextlib.ExitStack() as cleanup:
        given = os.environ.get(MULTIPROCESS_DIR)
        if given:  # the operator's folder: last run's values are not this run's
            for stale in Path(given).glob("*.db"):
                stale.unlink()
        elif workers > 1:
            # the workers write their metrics here and /metrics adds them up
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="clientdesk-"))
            os.environ[MULTIPROCESS_DIR] = folder
        options: dict[str, Any] = {
            "app": "gql.app:create_production_app",
            "factory": True,
            "log_config": None,
            "access_log": False,  # ours (CLIENTDESK_ACCESS_LOG) says more: request id, operation
            "proxy_headers": True,
            "forwarded_allow_ips": settings.forwarded_allow_ips,
            "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
            "server_header": False,
            "http": BoundedHttpToolsProtocol,  # a request's head is bounded too
        }
        if workers > 1 and not reload:  # the parent hands each worker its share of connections
            setup = functools.partial(
                configure_logging, level=settings.log_level, fmt=settings.log_format
            )
            status = serve_workers(options, host=host, port=port, workers=workers, setup=setup)
        else:
            uvicorn.run(host=host, port=port, reload=reload, **options)
            status = 0
    sys.exit(status)


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run again)."""
    from db.migrate import upgrade

    async def run() -> None:
        engine = create_engine(get_settings().database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    click.echo("Database is up to date.", err=True)


@main.command("seed-demo")
@click.option("--clients", "count", type=DEMO_CLIENTS, default=500, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same data.")
@click.option("--if-empty", is_flag=True, help="Do nothing when clients already exist.")
def seed_demo(count: int, seed: int, if_empty: bool) -> None:
    """Fill the database with realistic, varied demo data."""
    from clientdesk.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, seed_demo_data

    async def run() -> int:
        engine = create_engine(get_settings().database_url)
        try:
            return await seed_demo_data(
                engine,
                clients=count,
                seed=seed,
                if_empty=if_empty,
                progress=lambda message: click.echo(message, err=True),
            )
        finally:
            await engine.dispose()

    created = asyncio.run(run())
    if created:
        click.echo(
            f"Seeded {created} demo clients. Demo admin: {DEMO_ADMIN_EMAIL} / "
            f"{DEMO_ADMIN_PASSWORD}",
            err=True,
        )
    else:
        click.echo("Demo data already present; nothing seeded.", err=True)


@main.group()
def staff() -> None:
    """Manage staff users."""


@staff.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice([role.value for role in StaffRole]), required=True)
@click.option(
    "--password",
    default=None,
    help="Sign-in password (omit for a token-only user; '-' to read it from stdin).",
)
def staff_create(email: str, name: str, role: str, password: str | None) -> None:
    """Add a staff user."""
    from services.auth import configure_password_hasher
    from services.staff import create_staff

    configure_password_hasher(**get_settings().password_hashing)
    if password == "-":
        password = sys.stdin.readline().rstrip("\n")

    async def work(session: AsyncSession) -> Any:
        return await create_staff(
            session, email=email, name=name, role=StaffRole(role), password=password
        )

    user = run_with_session(work)
    click.echo(f"Created {user.role.value} {user.email} (id {user.id}).")


@staff.command("unlock")
@click.option("--email", required=True, help="E-mail of the account to unlock.")
def staff_unlock(email: str) -> None:
    """Forget an account's sign-in attempts (from every address): it may sign in at once.

    Addresses throttled for trying many accounts stay throttled.
    """
    from services.ratelimit import DatabaseRateLimiter, RateLimiter, RedisRateLimiter
    from services.signin_limits import unlock_account

    settings = get_settings()

    async def main() -> int:
        engine = create_engine(settings.database_url)
        limiter: RateLimiter = (
            RedisRateLimiter(settings.redis_url, prefix=f"{settings.redis_key_prefix}ratelimit:")
            if settings.redis_url
            else DatabaseRateLimiter(create_sessionmaker(engine))
        )
        try:
            return await unlock_account(limiter, email=email)
        finally:
            await limiter.close()
            await engine.dispose()

    forgotten = asyncio.run(main())
    click.echo(f"Unlocked {email.strip().lower()} ({forgotten} sign-in buckets forgotten).")


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--staff", "email", required=True, help="E-mail of the staff user who owns it.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option(
    "--scopes",
    default=None,
    help="Comma-separated scopes, e.g. clients:read,credits:write (default: all of the role).",
)
@click.option(
    "--expires-in-days", type=TOKEN_DAYS, default=None, help="1-3650 (default: never expires)."
)
@click.option("--replace", is_flag=True, help="Revoke this user's other tokens of that name.")
@click.option(
    "--trusted-documents-only",
    is_flag=True,
    help="It may send only registered documents (documentId), never a query of its own.",
)
def token_create(
    email: str,
    name: str,
    scopes: str | None,
    expires_in_days: int | None,
    replace: bool,
    trusted_documents_only: bool,
) -> None:
    """Create an API token and print it (it is shown only this once)."""
    from services.staff import get_staff_by_email
    from services.tokens import revoke_descendants

    async def work(session: AsyncSession) -> auth.IssuedToken:
        owner = await get_staff_by_email(session, email=email)
        now = system_clock()
        if replace:
            replaced = list(
                await session.scalars(
                    update(ApiToken)
                    .where(ApiToken.staff_id == owner.id, ApiToken.name == name)
                    .where(ApiToken.revoked_at.is_(None))
                    .values(revoked_at=now)
                    .returning(ApiToken.id)
                )
            )
            for token_id in replaced:  # and the tokens they minted, as tokenRevoke does
                await revoke_descendants(session, token_id=token_id, now=now)
        return await auth.issue_token(
            session,
            staff=owner,
            kind=TokenKind.API,
            name=name,
            now=now,
            scopes=auth.parse_scopes(scopes.split(",")) if scopes else None,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
            trusted_documents_only=trusted_documents_only,
        )

    issued = run_with_session(work)
    granted = ",".join(sorted(scope.value for scope in issued.scopes))
    click.echo(f"Token for {email} (scopes: {granted}); send it as a header:", err=True)
    click.echo(f'  {{"Authorization": "Bearer {issued.token}"}}', err=True)
    click.echo(issued.token)


@main.group()
def documents() -> None:
    """Manage trusted documents (persisted operations), sent as {"documentId": "sha256:…"}."""


@documents.command("add")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--source", default=None, help="Where they come from, e.g. a release (default: file name)."
)
def documents_add(files: tuple[Path, ...], source: str | None) -> None:
    """Register documents: graphql-codegen's persisted-documents.json manifests (*.json) or
    .graphql files (one document each). Prints each id; adding one again changes nothing.
    A manifest entry whose id is not its text's SHA-256 refuses the whole command."""
    from services import documents as registry

    batches = []
    try:
        for path in files:
            # as stored, line ends included: the id is the hash of the file's own bytes
            text = path.read_bytes().decode("utf-8")
            found = (
                registry.from_manifest(text, where=str(path))
                if path.suffix == ".json"
                else [registry.checked(text, claimed_id=None, where=str(path))]
            )
            batches.append((source or path.name, found))
    except DomainError as error:
        raise click.ClickException(error.message) from None

    async def work(session: AsyncSession) -> list[tuple[registry.Document, bool]]:
        now = system_clock()
        added = []
        for label, found in batches:
            added += await registry.register(session, documents=found, source=label, now=now)
        return added

    added = run_with_session(work)
    for document, new in added:
        names = ", ".join(document.operation_names)
        click.echo(f"{document.id}\t{'added' if new else 'known'}\t{names}")
    fresh = sum(new for _, new in added)
    click.echo(f"{fresh} added, {len(added) - fresh} already registered.", err=True)


@documents.command("list")
def documents_list() -> None:
    """Print the registered documents: id, operations, source, when added."""
    from services.documents import list_documents

    async def work(session: AsyncSession) -> list[tuple[str, str, str, str]]:
        return [
            (row.id, row.operation_names, row.source, row.added_at.isoformat())
            for row in await list_documents(session)
        ]

    for row in run_with_session(work):
        click.echo("\t".join(row))


@main.command("send-mail")
@click.option("--once", is_flag=True, help="One pass over the outbox, then exit.")
def send_mail(once: bool) -> None:
    """Deliver the e-mail outbox over SMTP (servers do it too; see CLIENTDESK_MAIL_SENDER)."""
    from gql.app import run_background_jobs, smtp_of
    from services import mail

    settings = get_settings()

    async def run() -> None:
        engine = create_engine(settings.database_url)
        sessions = create_sessionmaker(engine)
        try:
            if once:
                done = await mail.deliver_due(
                    sessions,
                    smtp=smtp_of(settings),
                    now=system_clock(),
                    max_attempts=settings.mail_max_attempts,
                )
                click.echo(
                    f"sent {done.sent}, retrying {done.retrying}, failed {done.failed}", err=True
                )
            else:
                await run_background_jobs(sessions, settings, system_clock, asyncio.Event())
        finally:
            await engine.dispose()

    asyncio.run(run())


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Jobs this process works on at once.",
)
def worker(concurrency: int) -> None:
    """Work the job queue (bulk jobs) until SIGTERM or Ctrl-C; run as many as wanted, on
    as many machines (PostgreSQL only: on SQLite, `clientdesk serve` works its jobs)."""
    from clientdesk.logs import configure_logging
    from db.session import is_sqlite
    from services.jobs import Jobs

    settings = get_settings()
    if is_sqlite(settings.database_url):
        raise click.ClickException(
            "On SQLite the job queue is in the server's memory: `clientdesk serve` works its "
            "jobs. Workers of their own need PostgreSQL (CLIENTDESK_DATABASE_URL)."
        )
    configure_logging(level=settings.log_level, fmt=settings.log_format)

    async def run() -> None:
        engine = create_engine(settings.database_url, pool_size=concurrency + 1)
        jobs = Jobs(
            create_sessionmaker(engine),
            system_clock,
            database_url=settings.database_url,
            chunk=settings.bulk_job_chunk,
            parallel=settings.bulk_job_parallel,
        )
        try:
            await jobs.run_worker(concurrency=concurrency)
        finally:
            await jobs.close()
            await engine.dispose()

    asyncio.run(run())


@main.command("export-matrix")
@click.option(
    "--readme",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rewrite the matrix between the markers in this README instead of printing.",
)
def export_matrix(readme: Path | None) -> None:
    """Print who may use which operation, as the permission classes declare it."""
    from gql.permissions import authorization_matrix, matrix_table
    from gql.schema import schema

    table = matrix_table(authorization_matrix(schema))
    if readme is None:
        click.echo(table, nl=False)
        return
    start, end = "<!-- authorization matrix: start -->\n", "<!-- authorization matrix: end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise click.ClickException(f"{readme} has no matrix markers")
    before, rest = text.split(start, 1)
    readme.write_text(before + start + table + end + rest.split(end, 1)[1])
    click.echo(f"Updated the matrix in {readme}", err=True)


@main.command("schema-check")
@click.option(
    "--against", default="HEAD~1", show_default=True, help="The git revision to compare with."
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("schema.graphql"),
    show_default=True,
)
@click.option(
    "--readme", type=click.Path(dir_okay=False, path_type=Path), default=Path("README.md")
)
def schema_check(against: str, schema_file: Path, readme: Path) -> None:
    """Fail on a breaking change to schema.graphql that README's changelog does not explain."""
    from clientdesk import schema_changes

    schema_file = schema_file.resolve()
    try:
        before = schema_changes.schema_at(against, schema_file)
    except schema_changes.UnknownRevision:
        raise click.ClickException(
            f"{against} is not a commit of this clone (shallow clone?): nothing to compare "
            "with. Fetch more history or pass --against."
        ) from None
    if before is None:
        click.echo(f"No {schema_file.name} at {against}: nothing to compare.", err=True)
        return
    after = schema_file.read_text()
    for change in schema_changes.dangerous_changes(before, after):
        click.echo(f"note: {change.description}", err=True)
    breaking = schema_changes.breaking_changes(before, after)
    missing = schema_changes.unexplained(breaking, schema_changes.changelog(readme.read_text()))
    for change in breaking:
        mark = "UNEXPLAINED" if change in missing else "explained"
        click.echo(f"breaking ({mark}): {change.description}", err=True)
    if missing:
        raise click.ClickException(
            f"{len(missing)} breaking change(s) to the API since {against}. Deprecate instead, "
            f"or name each (e.g. `{missing[0].element}`) under README's "
            f"'{schema_changes.CHANGELOG_HEADING}' with why and what to use instead."
        )
    click.echo(f"schema.graphql: no unexplained breaking change since {against}.", err=True)


@main.command("export-schema")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def export_schema(output: Path | None) -> None:
    """Print the GraphQL schema (SDL), or write it to --output."""
    from gql.schema import schema

    sdl = schema.as_str() + "\n"
    if output is None:
        click.echo(sdl, nl=False)
    else:
        output.write_text(sdl)
        click.echo(f"Wrote {output}", err=True)
