"""E-mail through an outbox: written in the transaction that causes it, delivered over SMTP
later, with retries and backoff, by whichever process gets to it first."""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage

import aiosmtplib
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.enums import MailStatus
from db.models import MailMessage

log = structlog.get_logger("clientdesk.mail")
MAX_BACKOFF = timedelta(hours=1)
# One-time links stop being kept once the message has gone (or has finally failed).
SECRET_IN_LINK = re.compile(r"(token=)[A-Za-z0-9_-]+")
RECIPIENT_LENGTH = 254  # the outbox's column
# Control characters, and what e-mail headers take for line breaks (U+0085, U+2028, U+2029).
_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def one_line(text: str) -> str:
    """`text` fit for one line of a header or a greeting: control characters and line
    breaks become spaces, runs of spaces one."""
    spaced = "".join(" " if unicodedata.category(c) in _BREAKING else c for c in text)
    return " ".join(spaced.split())


def mailbox(email: str, name: str | None = None) -> str:
    """`Name <email>` as a header writes it (quoted, control characters out of the name), or
    the bare address when there is no name or the whole would not fit the outbox."""
    display = one_line(name or "")
    if not display:
        return email
    try:
        written = str(Address(display_name=display, addr_spec=email))
    except (ValueError, MessageError):  # an address the stdlib does not write (non-ASCII)
        return email
    return written if len(written) <= RECIPIENT_LENGTH else email


@dataclass(frozen=True, slots=True)
class Smtp:
    """Where and how to send."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    tls: str = "none"  # none, starttls or ssl
    timeout: float = 30.0


@dataclass(slots=True)
class Delivery:
    """What one pass over the outbox did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


async def enqueue(
    session: AsyncSession,
    *,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
    client_id: int | None = None,
    recipient_name: str | None = None,
    kind: str | None = None,
) -> MailMessage:
    """Put a message in the outbox, in the caller's transaction."""
    message = MailMessage(
        client_id=client_id,
        kind=kind,
        recipient=mailbox(recipient, recipient_name),
        subject=one_line(subject),
        body=body,
        status=MailStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt: 1, 2, 4 … minutes, at most an hour."""
    return min(timedelta(minutes=2 ** (attempts - 1)), MAX_BACKOFF)


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession],
    *,
    smtp: Smtp,
    now: datetime,
    max_attempts: int,
    batch: int = 20,
) -> Delivery:
    """Send what is due; a failure is retried later, and marked FAILED after max_attempts."""
    delivery = Delivery()
    async with sessions() as session, session.begin():
        due = (
            await session.scalars(
                select(MailMessage)
                .where(MailMessage.status == MailStatus.PENDING, MailMessage.next_attempt_at <= now)
                .order_by(MailMessage.id)
                .limit(batch)
                # Another process delivering at the same time takes other rows (PostgreSQL).
                .with_for_update(skip_locked=True)
            )
        ).all()
        for message in due:
            message.attempts += 1
            try:
                await _send(smtp, message)
            # ValueError: headers that cannot be written (a broken sender setting, say)
            except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as error:
                message.last_error = f"{type(error).__name__}: {error}"[:1000]
                if message.attempts >= max_attempts:
                    message.status = MailStatus.FAILED
                    message.body = SECRET_IN_LINK.sub(r"\1[redacted]", message.body)
                    delivery.failed += 1
                else:
                    message.next_attempt_at = now + backoff(message.attempts)
                    delivery.retrying += 1
                log.warning("mail_not_sent", message_id=message.id, error=message.last_error)
                continue
            message.status = MailStatus.SENT
            message.sent_at = now
            message.last_error = None
            message.body = SECRET_IN_LINK.sub(r"\1[redacted]", message.body)
            delivery.sent += 1
    return delivery


def sender_mailbox(setting: str) -> str:
    """The sender setting, `Name <address>` or an address, as one mailbox: all before the
    last `<` is the name, whatever it holds (the stdlib's parsers would read a `:` in it as
    a group, or pick another address)."""
    name, bracket, rest = one_line(setting).rpartition("<")
    if not bracket or not rest.endswith(">"):
        return one_line(setting)
    return mailbox(rest[:-1].strip(), name.strip().strip('"'))


def compose(sender: str, message: MailMessage) -> EmailMessage:
    """The e-mail, its headers written by the standard library's SMTP policy (quoted, encoded,
    folded). Control characters and line breaks in a name (the sender setting, a client's
    name, the subject) become spaces first: no value can start a header of its own."""
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = sender_mailbox(sender)
    email["To"] = one_line(message.recipient)
    email["Subject"] = one_line(message.subject)
    email["Message-ID"] = f"<outbox-{message.id}@clientdesk>"
    email.set_content(message.body)
    return email


async def _send(smtp: Smtp, message: MailMessage) -> None:
    email = compose(smtp.sender, message)
    await aiosmtplib.send(
        email,
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.username,
        password=smtp.password,
        use_tls=smtp.tls == "ssl",
        start_tls=smtp.tls == "starttls",
        timeout=smtp.timeout,
    )
