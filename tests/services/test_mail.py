"""The outbox delivered over SMTP to a real local server (aiosmtpd), with retries; and the
login e-mail's one-time link, spent on a password through the cabinet endpoint."""

import re
import socket
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.enums import MailStatus
from db.models import Client, MailMessage
from services import mail
from services.auth import verify_password
from tests.api import GraphQLClient
from tests.conftest import FakeClock
from tests.factories import Factory

STRONG = "correct horse battery staple"
NEW_PASSWORD = "violet tractor humming quietly"


class Inbox:
    """An SMTP server's handler that keeps what it accepts, or answers with `reply`."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []  # of each message's envelope
        self.reply = "250 Message accepted"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            self.messages.append(message_from_bytes(envelope.content))
            self.recipients.append(list(envelope.rcpt_tos))
        return self.reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def smtp_at(port: int) -> mail.Smtp:
    return mail.Smtp(
        host="127.0.0.1", port=port, sender="Clientdesk <no-reply@example.com>", timeout=5
    )


async def test_message_goes_out_over_smtp(
    inbox: tuple[Inbox, int],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    handler, port = inbox
    message = await mail.enqueue(
        session, recipient="ada@example.com", subject="Hi", body="Hello Ada", now=clock()
    )
    await session.commit()
    done = await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=3)
    assert (done.sent, done.retrying, done.failed) == (1, 0, 0)
    [received] = handler.messages
    assert received["To"] == "ada@example.com"
    assert received["Subject"] == "Hi"
    assert received["From"] == "Clientdesk <no-reply@example.com>"
    assert received.get_payload().strip() == "Hello Ada"
    await session.refresh(message)
    assert (message.status, message.attempts, message.sent_at) == (MailStatus.SENT, 1, clock())
    # nothing is sent twice
    again = await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=3)
    assert again.sent == 0
    assert len(handler.messages) == 1


async def test_failures_are_retried_with_backoff_then_given_up(
    inbox: tuple[Inbox, int],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    handler, port = inbox
    handler.reply = "451 4.3.0 Try again later"
    message = await mail.enqueue(
        session, recipient="ada@example.com", subject="Hi", body="x", now=clock()
    )
    await session.commit()
    smtp = smtp_at(port)
    # first attempt: refused, retried in a minute
    first = await mail.deliver_due(sessionmaker, smtp=smtp, now=clock(), max_attempts=3)
    assert (first.sent, first.retrying) == (0, 1)
    await session.refresh(message)
    assert message.next_attempt_at == clock() + timedelta(minutes=1)
    assert "451" in (message.last_error or "")
    # not due yet: nothing happens
    assert (
        await mail.deliver_due(sessionmaker, smtp=smtp, now=clock(), max_attempts=3)
    ).retrying == 0
    # second attempt after a minute: refused again, retried in two
    clock.advance(timedelta(minutes=1))
    await mail.deliver_due(sessionmaker, smtp=smtp, now=clock(), max_attempts=3)
    await session.refresh(message)
    assert message.next_attempt_at == clock() + timedelta(minutes=2)
    # third and last attempt: given up
    clock.advance(timedelta(minutes=2))
    last = await mail.deliver_due(sessionmaker, smtp=smtp, now=clock(), max_attempts=3)
    assert last.failed == 1
    await session.refresh(message)
    assert (message.status, message.attempts) == (MailStatus.FAILED, 3)
    assert handler.messages == []


async def test_a_server_that_answers_later_gets_the_message(
    inbox: tuple[Inbox, int],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    handler, port = inbox
    await mail.enqueue(session, recipient="ada@example.com", subject="Hi", body="x", now=clock())
    await session.commit()
    # nothing listens on this port: the connection is refused
    refused = await mail.deliver_due(
        sessionmaker, smtp=smtp_at(free_port()), now=clock(), max_attempts=5
    )
    assert refused.retrying == 1
    clock.advance(timedelta(minutes=1))
    delivered = await mail.deliver_due(
        sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=5
    )
    assert delivered.sent == 1
    assert len(handler.messages) == 1


async def test_login_details_email_and_one_time_link(
    inbox: tuple[Inbox, int],
    api: GraphQLClient,
    http: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    handler, port = inbox
    api.token = await factory.admin_token()
    # given a client created with "send login details"
    create = """mutation($input: ClientCreateInput!) {
      clientCreate(input: $input) { client { login } userErrors { code } } }"""
    payload = (
        await api(
            create,
            {
                "input": {
                    "login": "Acme",
                    "name": "Acme Ltd",
                    "password": STRONG,
                    "currency": "EUR",
                    "email": "owner@example.com",
                    "sendLoginDetails": True,
                }
            },
        )
    )["clientCreate"]
    assert payload["userErrors"] == []
    # when the outbox is delivered
    await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=3)
    # then the client gets their login and a link, and never a password
    [received] = handler.messages
    assert received["To"] == "Acme Ltd <owner@example.com>"
    body = received.get_payload(decode=True).decode()
    assert "Hello Acme Ltd," in body
    assert "Login: acme" in body
    assert STRONG not in body
    link = re.search(r"http://127\.0\.0\.1:8000/cabinet/set-password\?token=([\w-]+)", body)
    assert link is not None
    token = link.group(1)
    # and the outbox no longer keeps the link's secret
    stored = await session.scalar(select(MailMessage))
    assert stored is not None
    assert token not in stored.body
    assert "token=[redacted]" in stored.body
    # a weak password is refused and the link stays usable
    weak = await http.post("/cabinet/set-password", json={"token": token, "password": "acme1234"})
    assert (weak.status_code, weak.json()["error"]["code"]) == (400, "PASSWORD_TOO_WEAK")
    # the client sets their password with the link
    done = await http.post("/cabinet/set-password", json={"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 200
    assert done.json() == {"login": "acme", "passwordSet": True}
    client = await session.scalar(select(Client).where(Client.login == "acme"))
    assert client is not None
    await session.refresh(client)
    assert verify_password(client.password_hash, NEW_PASSWORD)
    # the link works once
    again = await http.post(
        "/cabinet/set-password", json={"token": token, "password": NEW_PASSWORD}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (400, "INVALID")


async def test_set_password_link_expires(
    api: GraphQLClient,
    http: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    clock: FakeClock,
) -> None:
    from services.login_details import send_login_details

    client = await factory.client(login="late", email="late@example.com")
    await send_login_details(
        session,
        client=client,
        now=clock(),
        cabinet_base_url="https://cabinet.example.com",
        valid_for=timedelta(hours=72),
    )
    await session.commit()
    message = await session.scalar(select(MailMessage))
    assert message is not None
    token = re.search(r"token=([\w-]+)", message.body).group(1)  # type: ignore[union-attr]
    assert message.body.count("https://cabinet.example.com/set-password?token=") == 1
    clock.advance(timedelta(hours=72))
    expired = await http.post(
        "/cabinet/set-password", json={"token": token, "password": NEW_PASSWORD}
    )
    assert (expired.status_code, expired.json()["error"]["code"]) == (400, "INVALID")


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"token=x&password=y", {"content-type": "application/x-www-form-urlencoded"}, 415),
        (b"{not json", {"content-type": "application/json"}, 400),
        (b'{"token": 1, "password": "x"}', {"content-type": "application/json"}, 400),
    ],
)
async def test_set_password_refuses_malformed_requests(
    http: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int
) -> None:
    response = await http.post("/cabinet/set-password", content=content, headers=headers)
    assert response.status_code == status
    assert "error" in response.json()


async def test_background_jobs_deliver_and_forget_expired_keys(
    inbox: tuple[Inbox, int],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    factory: Factory,
) -> None:
    import asyncio
    import threading

    from clientdesk.settings import Settings
    from db.models import IdempotencyKey
    from gql.app import run_background_jobs

    handler, port = inbox
    arrived = threading.Event()
    original = handler.handle_DATA

    async def handle_and_signal(server: Any, smtp_session: Any, envelope: Any) -> str:
        reply = await original(server, smtp_session, envelope)
        arrived.set()
        return reply

    handler.handle_DATA = handle_and_signal  # type: ignore[method-assign]
    await add_expired_key(session, factory, clock)
    await mail.enqueue(session, recipient="ada@example.com", subject="Hi", body="x", now=clock())
    await session.commit()
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, mail_poll_seconds=60)
    stop = asyncio.Event()
    jobs = asyncio.create_task(run_background_jobs(sessionmaker, settings, clock, stop))
    assert await asyncio.to_thread(arrived.wait, 10)
    stop.set()
    await jobs
    assert len(handler.messages) == 1
    assert (
        await session.scalar(select(IdempotencyKey.id).where(IdempotencyKey.key == "old")) is None
    )


async def test_keys_are_forgotten_where_no_mail_is_sent(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    factory: Factory,
) -> None:
    import asyncio

    from clientdesk.settings import Settings
    from db.models import IdempotencyKey
    from gql.app import run_background_jobs

    # given an expired key and a process that does not send mail
    await add_expired_key(session, factory, clock)
    await session.commit()
    settings = Settings(mail_sender=False, mail_poll_seconds=60)
    # when its background jobs run one pass
    stop = asyncio.Event()
    stop.set()  # the pass before the first wait still runs
    jobs = asyncio.create_task(run_background_jobs(sessionmaker, settings, clock, stop))
    await jobs
    # then the key is gone
    assert (
        await session.scalar(select(IdempotencyKey.id).where(IdempotencyKey.key == "old")) is None
    )


# Line breaks and control characters a name or a setting may carry into a header.
INJECTIONS = [
    "Evil\r\nBcc: thief@example.com",
    "Evil\nBcc: thief@example.com",
    "Evil\rBcc: thief@example.com",
    "Evil\x85Bcc: thief@example.com",
    "Evil\u2028Bcc: thief@example.com",
    "Evil\x1b\x07\x7f\tBcc: thief@example.com",  # (PostgreSQL stores no NUL)
]


@pytest.mark.parametrize("name", INJECTIONS)
async def test_names_cannot_add_headers_or_recipients(
    inbox: tuple[Inbox, int],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    factory: Factory,
    name: str,
) -> None:
    from services.login_details import send_login_details

    handler, port = inbox
    # given a client whose name, and a sender setting whose name, carry line breaks
    client = await factory.client(login="evil", name=name, email="evil@example.com")
    await send_login_details(
        session,
        client=client,
        now=clock(),
        cabinet_base_url="https://cabinet.example.com",
        valid_for=timedelta(hours=1),
    )
    await mail.enqueue(session, recipient="ada@example.com", subject=name, body="x", now=clock())
    await session.commit()
    smtp = mail.Smtp(host="127.0.0.1", port=port, sender=f"{name} <no-reply@example.com>")
    # when the outbox is delivered
    done = await mail.deliver_due(sessionmaker, smtp=smtp, now=clock(), max_attempts=3)
    # then each message went to its recipient alone, with one line per header
    assert (done.sent, done.retrying, done.failed) == (2, 0, 0)
    assert handler.recipients == [["evil@example.com"], ["ada@example.com"]]
    login_mail, other = handler.messages
    for received in handler.messages:
        assert received["Bcc"] is None
        assert received["From"] == '"Evil Bcc: thief@example.com" <no-reply@example.com>'
        assert all(unicodedata.category(c) != "Cc" for _, value in received.items() for c in value)
    assert login_mail["To"] == '"Evil Bcc: thief@example.com" <evil@example.com>'
    assert other["Subject"] == "Evil Bcc: thief@example.com"
    # and the greeting is one line too
    body = login_mail.get_payload(decode=True).decode()
    assert body.splitlines()[0] == "Hello Evil Bcc: thief@example.com,"


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("Ada Lovelace", "Ada Lovelace <ada@example.com>"),
        ('Ada "Countess" Lovelace', '"Ada \\"Countess\\" Lovelace" <ada@example.com>'),
        ("Zoë, Ltd.", "=?utf-8?q?Zo=C3=AB=2C_Ltd=2E?= <ada@example.com>"),
        ("  \t ", "ada@example.com"),
        (None, "ada@example.com"),
        ("x" * 300, "ada@example.com"),  # would not fit the outbox: the address alone
    ],
)
async def test_recipient_names_are_written_as_headers_write_them(
    inbox: tuple[Inbox, int],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    name: str | None,
    header: str,
) -> None:
    handler, port = inbox
    await mail.enqueue(
        session,
        recipient="ada@example.com",
        recipient_name=name,
        subject="Hi",
        body="x",
        now=clock(),
    )
    await session.commit()
    await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=3)
    [received] = handler.messages
    assert handler.recipients == [["ada@example.com"]]
    assert received.get_all("To") == [header]


async def test_a_message_that_cannot_be_written_does_not_hold_up_the_others(
    inbox: tuple[Inbox, int],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    handler, port = inbox
    # given a message with no address to send to, before a good one
    broken = await mail.enqueue(session, recipient="<>", subject="Hi", body="x", now=clock())
    await mail.enqueue(session, recipient="ada@example.com", subject="Hi", body="x", now=clock())
    await session.commit()
    # when the outbox is delivered
    done = await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=3)
    # then the good one went, and the broken one waits for a retry with its reason
    assert (done.sent, done.retrying) == (1, 1)
    assert handler.recipients == [["ada@example.com"]]
    await session.refresh(broken)
    assert broken.status is MailStatus.PENDING
    assert broken.last_error


async def add_expired_key(session: AsyncSession, factory: Factory, clock: FakeClock) -> None:
    """An idempotency key that expired a day ago (the background jobs forget such keys)."""
    from db.models import IdempotencyKey

    staff = await factory.staff()
    session.add(
        IdempotencyKey(
            staff_id=staff.id,
            key="old",
            operation="credit.add",
            request_hash="x",
            response={},
            created_at=clock() - timedelta(days=2),
            expires_at=clock() - timedelta(days=1),
        )
    )


SEND = """mutation($id: ID!) {
  clientLoginDetailsSend(id: $id) {
    client {
      login
      loginDetails { status recipient queuedAt sentAt attempts nextAttemptAt lastError }
      viewerCan { sendLoginDetails }
    }
    userErrors { code field message }
  }
}"""
DELIVERY = """query($id: ID!) {
  client(id: $id) { loginDetails { status sentAt attempts nextAttemptAt lastError } }
}"""


def link_token(message: Message) -> str:
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    found = re.search(r"/cabinet/set-password\?token=([\w-]+)", body)
    assert found is not None, body
    return found.group(1)


async def outbox_count(session: AsyncSession) -> int:
    return len((await session.scalars(select(MailMessage))).all())


async def test_login_details_sent_again_replace_the_link_before_and_show_their_delivery(
    inbox: tuple[Inbox, int],
    api: GraphQLClient,
    http: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    from gql.node import to_global_id

    handler, port = inbox
    api.token = await factory.admin_token()
    client = await factory.client(login="kite", name="Kite Ltd", email="kite@example.com")
    await session.commit()
    client_id = to_global_id("Client", client.id)
    # never sent: nothing to show, and the action is offered
    shown = await api(
        "query($id: ID!) { client(id: $id) { loginDetails { status } "
        "viewerCan { sendLoginDetails } } }",
        {"id": client_id},
    )
    assert shown["client"] == {"loginDetails": None, "viewerCan": {"sendLoginDetails": True}}
    # sent: waiting in the outbox
    sent = (await api(SEND, {"id": client_id}))["clientLoginDetailsSend"]
    assert sent["userErrors"] == []
    assert sent["client"]["loginDetails"] == {
        "status": "PENDING",
        "recipient": "Kite Ltd <kite@example.com>",
        "queuedAt": clock().isoformat(),
        "sentAt": None,
        "attempts": 0,
        "nextAttemptAt": clock().isoformat(),
        "lastError": None,
    }
    await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=3)
    [first] = handler.messages
    assert first["Subject"] == "How to sign in to your account"
    assert "Login: kite" in first.get_payload(decode=True).decode()  # type: ignore[union-attr]
    delivered = (await api(DELIVERY, {"id": client_id}))["client"]["loginDetails"]
    assert delivered == {
        "status": "SENT",
        "sentAt": clock().isoformat(),
        "attempts": 1,
        "nextAttemptAt": None,
        "lastError": None,
    }
    # a second click within the minute sends nothing (its link would spoil the first's)
    clock.advance(timedelta(seconds=30))
    before = await outbox_count(session)
    again = (await api(SEND, {"id": client_id}))["clientLoginDetailsSend"]
    assert [e["code"] for e in again["userErrors"]] == ["TOO_MANY_ATTEMPTS"]
    assert "31 seconds" in again["userErrors"][0]["message"]
    assert await outbox_count(session) == before
    # after it, a new e-mail; the first e-mail's link stops working, the new one works
    clock.advance(timedelta(seconds=31))
    assert (await api(SEND, {"id": client_id}))["clientLoginDetailsSend"]["userErrors"] == []
    await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=3)
    old, new = link_token(first), link_token(handler.messages[1])
    assert old != new
    refused = await http.post(
        "/cabinet/set-password", json={"token": old, "password": NEW_PASSWORD}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "INVALID")
    done = await http.post("/cabinet/set-password", json={"token": new, "password": NEW_PASSWORD})
    assert done.json() == {"login": "kite", "passwordSet": True}
    # each sending is in the audit log
    audit = await api(
        'query { auditLog(filter: {actions: ["client.login_details_send"]}) { totalCount } }'
    )
    assert audit["auditLog"]["totalCount"] == 2


async def test_login_details_that_cannot_be_delivered_show_the_error(
    inbox: tuple[Inbox, int],
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    from gql.node import to_global_id

    handler, port = inbox
    handler.reply = "550 5.1.1 No such mailbox"
    api.token = await factory.admin_token()
    client = await factory.client(email="gone@example.com")
    await session.commit()
    client_id = to_global_id("Client", client.id)
    assert (await api(SEND, {"id": client_id}))["clientLoginDetailsSend"]["userErrors"] == []
    await mail.deliver_due(sessionmaker, smtp=smtp_at(port), now=clock(), max_attempts=1)
    shown = (await api(DELIVERY, {"id": client_id}))["client"]["loginDetails"]
    assert shown["status"] == "FAILED"
    assert shown["sentAt"] is None
    assert shown["nextAttemptAt"] is None
    assert "550" in shown["lastError"]


async def test_login_details_are_refused_without_an_address_or_for_anothers_client(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    from db.enums import StaffRole
    from gql.node import to_global_id

    manager = await factory.staff(role=StaffRole.MANAGER)
    other = await factory.staff(role=StaffRole.MANAGER)
    no_email = await factory.client(email=None, phone="+4915112345678", manager_id=manager.id)
    theirs = await factory.client(email="theirs@example.com", manager_id=other.id)
    mine = await factory.client(email="mine@example.com", manager_id=manager.id)
    api.token = await factory.token(manager)
    await session.commit()
    refused = (await api(SEND, {"id": to_global_id("Client", no_email.id)}))[
        "clientLoginDetailsSend"
    ]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("CONTACT_REQUIRED", ["id"])
    ]
    assert refused["client"] is None
    viewer_can = "query($id: ID!) { client(id: $id) { viewerCan { sendLoginDetails } } }"
    no_email_can = await api(viewer_can, {"id": to_global_id("Client", no_email.id)})
    assert no_email_can["client"]["viewerCan"]["sendLoginDetails"] is False
    errors = await api.errors(SEND, {"id": to_global_id("Client", theirs.id)})
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert await outbox_count(session) == 0
    ok = (await api(SEND, {"id": to_global_id("Client", mine.id)}))["clientLoginDetailsSend"]
    assert ok["userErrors"] == []
    assert ok["client"]["loginDetails"]["status"] == "PENDING"
    assert await outbox_count(session) == 1
