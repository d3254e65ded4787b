"""The `clientdesk` command, run as a new user runs it: a real process on a real database."""

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from clientdesk.settings import Settings
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from services.documents import document_id
from services.ratelimit import DatabaseRateLimiter
from services.signin_limits import LoginLimits, take_login_attempt

CLIENTDESK = str(Path(sys.executable).parent / "clientdesk")
SCHEMA_FILE = Path(__file__).parent.parent / "schema.graphql"


def clientdesk(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [CLIENTDESK, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


async def mint(url: str, token: str) -> str:
    """A token minted by `token` (tokenCreate)."""
    app = create_app(Settings(database_url=url))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": 'mutation { tokenCreate(input: {name: "sub", scopes: [CLIENTS_READ]}) '
                "{ token } }"
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    await app.state.engine.dispose()
    return str(response.json()["data"]["tokenCreate"]["token"])


async def viewer_email(url: str, token: str) -> str | None:
    app = create_app(Settings(database_url=url))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.post(
            "/graphql",
            json={"query": "{ viewer { email } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    await app.state.engine.dispose()
    data = response.json().get("data") or {}
    return (data.get("viewer") or {}).get("email")


async def test_migrate_is_idempotent(scratch_url: str) -> None:
    for _ in range(2):
        done = clientdesk(scratch_url, "migrate")
        assert done.returncode == 0, done.stderr
        assert "Database is up to date." in done.stderr


async def test_staff_and_token_commands(scratch_url: str) -> None:
    # given a staff user created from the command line, password read from stdin
    created = clientdesk(
        scratch_url,
        "staff",
        "create",
        "--email",
        "Ops@Example.com",
        "--name",
        "Ops",
        "--role",
        "ADMIN",
        "--password",
        "-",
        stdin="a-long-password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "Created ADMIN ops@example.com" in created.stdout
    # when a token is created for them
    issued = clientdesk(scratch_url, "token", "create", "--staff", "ops@example.com")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    # then stdout is only the token, and the token signs requests in as that user
    assert token.startswith("cd_")
    assert len(token) > 40
    assert await viewer_email(scratch_url, token) == "ops@example.com"
    minted = await mint(scratch_url, token)
    assert await viewer_email(scratch_url, minted) == "ops@example.com"
    # and --replace revokes the earlier token of the same name, with the tokens it minted
    replaced = clientdesk(scratch_url, "token", "create", "--staff", "ops@example.com", "--replace")
    assert await viewer_email(scratch_url, token) is None
    assert await viewer_email(scratch_url, minted) is None
    assert await viewer_email(scratch_url, replaced.stdout.strip()) == "ops@example.com"


async def test_staff_unlock_forgets_the_accounts_sign_in_attempts(scratch_url: str) -> None:
    # given an account whose sign-in buckets are empty, from two addresses, and another's
    engine = create_engine(scratch_url)
    limiter = DatabaseRateLimiter(create_sessionmaker(engine))
    limits = LoginLimits(per_address_account=1, per_address=50, per_account=2)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        for address, email in [("10.0.0.1", "ops@example.com"), ("10.0.0.2", "ops@example.com")]:
            await take_login_attempt(limiter, email=email, address=address, limits=limits, now=now)
        await take_login_attempt(
            limiter, email="other@example.com", address="10.0.0.1", limits=limits, now=now
        )
        # when the command unlocks it
        done = clientdesk(scratch_url, "staff", "unlock", "--email", "Ops@Example.com")
        assert done.returncode == 0, done.stderr
        assert "Unlocked ops@example.com (3 sign-in buckets forgotten)" in done.stdout
        # then its attempts are back, from every address; the other account's are not
        for address in ("10.0.0.1", "10.0.0.2"):
            waits = await take_login_attempt(
                limiter, email="ops@example.com", address=address, limits=limits, now=now
            )
            assert waits is None
        waits = await take_login_attempt(
            limiter, email="other@example.com", address="10.0.0.1", limits=limits, now=now
        )
        assert waits is not None
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("staff", "create", "--email", "not-an-email", "--name", "X", "--role", "ADMIN"),
            "Not a valid e-mail address",
        ),
        (("token", "create", "--staff", "nobody@example.com"), "No staff user nobody@example.com"),
        (
            (
                "staff",
                "create",
                "--email",
                "a@example.com",
                "--name",
                "A",
                "--role",
                "ADMIN",
                "--password",
                "password1",
            ),
            "Too easy to guess",
        ),
    ],
)
async def test_command_errors_are_one_clear_line(
    scratch_url: str, args: tuple[str, ...], message: str
) -> None:
    done = clientdesk(scratch_url, *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


async def test_token_scopes_are_checked(scratch_url: str) -> None:
    clientdesk(
        scratch_url,
        "staff",
        "create",
        "--email",
        "m@example.com",
        "--name",
        "M",
        "--role",
        "MANAGER",
    )
    unknown = clientdesk(
        scratch_url,
        "token",
        "create",
        "--staff",
        "m@example.com",
        "--scopes",
        "clients:read,clients:fly",
    )
    assert unknown.returncode == 1
    assert "Unknown scope 'clients:fly'" in unknown.stderr
    beyond_role = clientdesk(
        scratch_url, "token", "create", "--staff", "m@example.com", "--scopes", "staff:admin"
    )
    assert beyond_role.returncode == 1
    assert "A MANAGER cannot hold: staff:admin" in beyond_role.stderr


VIEWER_DOCUMENT = "query Viewer { viewer { email } }"


async def post_as(url: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    app = create_app(Settings(database_url=url))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.post(
            "/graphql", json=payload, headers={"Authorization": f"Bearer {token}"}
        )
    await app.state.engine.dispose()
    body: dict[str, Any] = response.json()
    return body


async def test_documents_add_and_a_trusted_documents_only_token(
    scratch_url: str, tmp_path: Path
) -> None:
    # given graphql-codegen's manifest and a .graphql file
    client_document = "query Client($login: String!) { client(login: $login) { name } }\n"
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(
        json.dumps({document_id(client_document).removeprefix("sha256:"): (client_document)})
    )
    viewer_file = tmp_path / "viewer.graphql"
    viewer_file.write_text(VIEWER_DOCUMENT)
    # when both are added, twice
    first = clientdesk(scratch_url, "documents", "add", str(manifest), str(viewer_file))
    again = clientdesk(scratch_url, "documents", "add", str(viewer_file))
    listed = clientdesk(scratch_url, "documents", "list")
    # then each id is printed once added, then known; the list shows both
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"{document_id(client_document)}\tadded\tClient",
        f"{document_id(VIEWER_DOCUMENT)}\tadded\tViewer",
    ]
    assert again.stdout.splitlines() == [f"{document_id(VIEWER_DOCUMENT)}\tknown\tViewer"]
    assert "0 added, 1 already registered." in again.stderr
    assert sorted(line.split("\t")[:3] for line in listed.stdout.splitlines()) == sorted(
        [
            [document_id(client_document), "Client", "persisted-documents.json"],
            [document_id(VIEWER_DOCUMENT), "Viewer", "viewer.graphql"],
        ]
    )
    # and a token created trusted-documents-only sends those, and nothing of its own
    clientdesk(
        scratch_url,
        "staff",
        "create",
        "--email",
        "p@example.com",
        "--name",
        "P",
        "--role",
        "MANAGER",
    )
    issued = clientdesk(
        scratch_url, "token", "create", "--staff", "p@example.com", "--trusted-documents-only"
    )
    token = issued.stdout.strip()
    by_id = await post_as(scratch_url, token, {"documentId": document_id(VIEWER_DOCUMENT)})
    assert by_id.get("data") == {"viewer": {"email": "p@example.com"}}, (by_id, issued.stderr)
    ad_hoc = await post_as(scratch_url, token, {"query": VIEWER_DOCUMENT})
    assert ad_hoc["errors"][0]["extensions"]["code"] == "TRUSTED_DOCUMENTS_ONLY"


async def test_documents_add_refuses_a_manifest_with_a_wrong_hash(
    scratch_url: str, tmp_path: Path
) -> None:
    # given a manifest with one right entry and one whose id is not its text's hash
    wrong = "0" * 64
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(
        json.dumps({document_id(VIEWER_DOCUMENT): VIEWER_DOCUMENT, wrong: "{ viewer { name } }"})
    )
    # when it is added
    done = clientdesk(scratch_url, "documents", "add", str(manifest))
    # then the command fails naming the entry, and nothing was registered
    assert done.returncode == 1
    assert f"entry {wrong}: the id {wrong} is not the SHA-256 of its text" in done.stderr
    assert "Traceback" not in done.stderr
    assert clientdesk(scratch_url, "documents", "list").stdout == ""


async def test_documents_add_hashes_a_file_as_stored_windows_line_ends_included(
    scratch_url: str, tmp_path: Path
) -> None:
    # given a document saved with CRLF line ends (a client hashes the file as it is)
    stored = b"query Viewer {\r\n  viewer { email }\r\n}\r\n"
    path = tmp_path / "viewer.graphql"
    path.write_bytes(stored)
    # when it is added, then its id is the SHA-256 of those bytes
    done = clientdesk(scratch_url, "documents", "add", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\t")[0] == "sha256:" + hashlib.sha256(stored).hexdigest()


async def test_seed_demo_if_empty_seeds_once(scratch_url: str) -> None:
    first = clientdesk(scratch_url, "seed-demo", "--clients", "40", "--if-empty")
    assert first.returncode == 0, first.stderr
    assert "Seeded 40 demo clients" in first.stderr
    second = clientdesk(scratch_url, "seed-demo", "--clients", "40", "--if-empty")
    assert "nothing seeded" in second.stderr


def test_export_schema_prints_the_checked_in_schema() -> None:
    done = subprocess.run([CLIENTDESK, "export-schema"], capture_output=True, text=True, check=True)
    assert done.stdout == SCHEMA_FILE.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("token", "create", "--staff", "a@example.com", "--expires-in-days", "-1"),
            "'--expires-in-days': -1 is not in the range 1<=x<=3650.",
        ),
        (
            ("token", "create", "--staff", "a@example.com", "--expires-in-days", "0"),
            "'--expires-in-days': 0 is not in the range 1<=x<=3650.",
        ),
        (
            ("token", "create", "--staff", "a@example.com", "--expires-in-days", "99999999999"),
            "'--expires-in-days': 99999999999 is not in the range 1<=x<=3650.",
        ),
        (("seed-demo", "--clients", "-5"), "'--clients': -5 is not in the range"),
        (("seed-demo", "--clients", "0"), "'--clients': 0 is not in the range"),
        (("serve", "--port", "0"), "'--port': 0 is not in the range 1<=x<=65535."),
        (("serve", "--port", "70000"), "'--port': 70000 is not in the range 1<=x<=65535."),
        (("serve", "--workers", "0"), "'--workers': 0 is not in the range 1<=x<=256."),
    ],
)
def test_numbers_out_of_range_are_refused_before_anything_runs(
    args: tuple[str, ...], message: str
) -> None:
    # nothing to connect to: a refused number never gets that far
    done = clientdesk("postgresql+asyncpg://nobody@127.0.0.1:1/none", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_of_its_own_needs_postgresql(tmp_path: Path) -> None:
    done = clientdesk(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", "worker")
    assert done.returncode == 1
    assert "clientdesk serve" in done.stderr
    assert "Traceback" not in done.stderr
