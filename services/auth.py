"""Staff credentials: argon2id password hashes, API tokens stored as SHA-256, the viewer."""

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.direct import Reused
from db.enums import Scope, StaffRole, TokenKind
from db.models import ApiToken, StaffUser
from db.session import SharedSession, begin_write
from services.cpu import CpuLane
from services.errors import DomainError, ErrorCode
from services.passwords import MAX_LENGTH
from services.validation import UNSTORABLE

TOKEN_PREFIX = "cd_"
ROLE_SCOPES: dict[StaffRole, frozenset[Scope]] = {
    StaffRole.ADMIN: frozenset(Scope),
    StaffRole.MANAGER: frozenset(Scope) - {Scope.STAFF_ADMIN},
}
# Refresh `last_used_at` at most this often, so that reads do not write on every request.
LAST_USED_PRECISION = timedelta(minutes=1)

# argon2-cffi's defaults (RFC 9106 "low memory": 64 MiB, t=3, p=4) exceed OWASP's minimums.
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that timing does not reveal it.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# Hashing takes the hasher's memory (64 MiB by default) and its parallelism in threads for
# tens of milliseconds, without the GIL: at most two at a time per process, off the event loop.
HASHING = CpuLane("argon2", 2)


def configure_password_hasher(*, time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Replace the hashing parameters (settings at start-up; cheaper ones in tests)."""
    global _hasher, _DUMMY_HASH  # one hasher per process, set once at start-up
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with a fresh salt."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; takes as long for a missing hash as for a wrong one."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def dummy_hash_like(template: str | None) -> str:
    """A hash that no password matches, with the argon2 parameters of `template` (the current
    ones when there is none): verifying against it costs what verifying against `template`
    does."""
    try:
        parameters = extract_parameters(template or _DUMMY_HASH)
    except InvalidHashError:
        return _DUMMY_HASH
    head = (template or _DUMMY_HASH).rsplit("$", 2)[0]  # $argon2id$v=19$m=…,t=…,p=…
    salt, digest = (
        base64.b64encode(secrets.token_bytes(size)).decode().rstrip("=")
        for size in (parameters.salt_len, parameters.hash_len)
    )
    return f"{head}${salt}${digest}"


def password_needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


async def hash_password_async(password: str) -> str:
    """`hash_password` off the event loop, a few at a time per process."""
    return await HASHING.run(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """`verify_password` off the event loop, a few at a time per process."""
    return await HASHING.run(verify_password, password_hash, password)


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored (tokens are 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated staff user of a request and what its token may do."""

    staff_id: int
    email: str
    name: str
    role: StaffRole
    scopes: frozenset[Scope]
    token_id: int
    token_expires_at: datetime | None
    trusted_documents_only: bool = False  # sends only registered documents (services/documents)

    @property
    def is_admin(self) -> bool:
        return self.role is StaffRole.ADMIN

    def has_scope(self, scope: Scope) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as shown to its owner: once, at creation."""

    token: str
    token_id: int
    prefix: str
    expires_at: datetime | None
    scopes: frozenset[Scope]


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names (`clients:read`), refusing unknown ones."""
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value.strip()))
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise DomainError(
                ErrorCode.INVALID_SCOPE, f"Unknown scope {value!r}; known: {known}", ["scopes"]
            ) from None
    return frozenset(scopes)


async def issue_token(
    session: AsyncSession,
    *,
    staff: StaffUser,
    kind: TokenKind,
    name: str,
    now: datetime,
    scopes: frozenset[Scope] | None = None,
    expires_at: datetime | None = None,
    parent_id: int | None = None,
    trusted_documents_only: bool = False,
) -> IssuedToken:
    """Create a token for `staff` limited to `scopes` (default: all its role allows), minted
    by the token `parent_id` (if any), with which it is revoked."""
    allowed = ROLE_SCOPES[staff.role]
    scopes = allowed if scopes is None else scopes
    if not scopes <= allowed:
        extra = ", ".join(sorted(scope.value for scope in scopes - allowed))
        raise DomainError(
            ErrorCode.INVALID_SCOPE, f"A {staff.role.value} cannot hold: {extra}", ["scopes"]
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        staff_id=staff.id,
        kind=kind,
        name=name,
        prefix=token[:12],
        token_hash=token_digest(token),
        scopes=sorted(scope.value for scope in scopes),
        created_at=now,
        expires_at=expires_at,
        parent_id=parent_id,
        trusted_documents_only=trusted_documents_only,
    )
    session.add(row)
    await session.flush()
    return IssuedToken(token, row.id, row.prefix, expires_at, scopes)


# Read with the account signing in: the first staff user with a password, whose hash's
# parameters the dummy hash takes when the account does not exist or has no password.
_TEMPLATE_ID = (
    select(func.min(StaffUser.id)).where(StaffUser.password_hash.is_not(None)).scalar_subquery()
)


class TokenRefusal(StrEnum):
    """Why a bearer token stands for no viewer (told to the caller, who holds the token)."""

    UNKNOWN = "unknown"  # never issued here, or deleted
    EXPIRED = "expired"
    REVOKED = "revoked"  # revoked, or its owner deactivated


# The token behind a digest with its owner, in force or not (built and compiled once: it runs
# on every request).
TOKEN_OWNER = Reused(
    select(
        ApiToken.id,
        ApiToken.scopes,
        ApiToken.expires_at,
        ApiToken.last_used_at,
        ApiToken.revoked_at,
        ApiToken.trusted_documents_only,
        StaffUser.id,
        StaffUser.email,
        StaffUser.name,
        StaffUser.role,
        StaffUser.is_active,
    )
    .join(StaffUser, StaffUser.id == ApiToken.staff_id)
    .where(ApiToken.token_hash == bindparam("digest"))
)


class TokenCache:
    """The viewers of tokens seen lately, in this process, for `ttl`: a request with a token
    seen less than `ttl` ago skips the database. So a revoked token (or a deactivated owner)
    stops working within `ttl` in every process, and at once in the one that revoked it
    (`clear`). An expired token stops at its expiry as always. Refused tokens are not kept:
    why one is refused is always the database's answer."""

    def __init__(self, ttl: timedelta, *, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[datetime, Viewer]] = {}

    def get(self, digest: str, now: datetime) -> Viewer | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] <= now:
            return None
        viewer = entry[1]
        if viewer.token_expires_at is not None and viewer.token_expires_at <= now:
            return None
        return viewer

    def put(self, digest: str, viewer: Viewer, now: datetime) -> None:
        if self.ttl <= timedelta(0):
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (now + self.ttl, viewer)

    def clear(self) -> None:
        self._entries.clear()


async def authenticate(
    db: SharedSession, *, token: str, now: datetime, cache: TokenCache | None = None
) -> Viewer | TokenRefusal:
    """The viewer a bearer token stands for, or why it stands for none."""
    if not token.startswith(TOKEN_PREFIX):
        return TokenRefusal.UNKNOWN
    digest = token_digest(token)
    if cache is not None and (viewer := cache.get(digest, now)) is not None:
        return viewer
    # every request asks this: straight through the driver
    found = await db.fetch_all(TOKEN_OWNER, {"digest": digest})
    if not found:
        return TokenRefusal.UNKNOWN
    (
        token_id,
        scopes,
        expires_at,
        last_used_at,
        revoked_at,
        trusted_documents_only,
        staff_id,
        email,
        name,
        role,
        is_active,
    ) = found[0]
    if revoked_at is not None or not is_active:
        return TokenRefusal.REVOKED
    if expires_at is not None and expires_at <= now:
        return TokenRefusal.EXPIRED
    if last_used_at is None or now - last_used_at >= LAST_USED_PRECISION:
        async with db.exclusive() as session:
            await begin_write(session)
            await session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )
            await session.commit()
    viewer = Viewer(
        staff_id=staff_id,
        email=email,
        name=name,
        role=role,
        scopes=frozenset(Scope(value) for value in scopes),
        token_id=token_id,
        token_expires_at=expires_at,
        trusted_documents_only=trusted_documents_only,
    )
    if cache is not None:
        cache.put(digest, viewer, now)
    return viewer


async def login(
    session: AsyncSession, *, email: str, password: str, now: datetime, ttl: timedelta
) -> tuple[StaffUser, IssuedToken]:
    """Check a staff user's password and issue a session token with every scope of the role.

    Every refusal does the same work, so that neither the answer nor its timing tells whether
    an account exists or is active: one look-up (its transaction ends before the hash is
    checked: a sign-in waiting for its turn to hash holds no database connection) and one
    argon2 verification, against the account's own hash or else a dummy one with the
    parameters of a stored hash (the current ones when none is stored)."""
    email = email.strip().lower()  # a longer one than any account's simply finds none
    acceptable = not UNSTORABLE.search(password) and len(password) <= MAX_LENGTH
    staff = template = None
    if not UNSTORABLE.search(email):  # no account has such characters; the driver refuses them
        found = await session.scalars(
            select(StaffUser).where(or_(StaffUser.email == email, StaffUser.id == _TEMPLATE_ID))
        )
        rows = found.all()
        staff = next((row for row in rows if row.email == email), None)
        template = next((row.password_hash for row in rows if row.password_hash), None)
    await session.commit()
    own = staff.password_hash if staff is not None else None
    # a password that cannot be right (unstorable, or longer than the policy allows) still
    # costs one verification, of an empty one
    right = await verify_password_async(
        own or dummy_hash_like(template), password if acceptable else ""
    )
    if staff is None or own is None or not staff.is_active or not acceptable or not right:
        raise DomainError(
            ErrorCode.INVALID_CREDENTIALS, "E-mail or password is not right", ["password"]
        )
    if password_needs_rehash(own):
        staff.password_hash = await hash_password_async(password)
    issued = await issue_token(
        session,
        staff=staff,
        kind=TokenKind.SESSION,
        name="staffLogin",
        now=now,
        expires_at=now + ttl,
    )
    await session.commit()
    return staff, issued
