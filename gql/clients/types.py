"""GraphQL types for clients."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from clientdesk.settings import Settings
from db.keyset import Ordering
from db.models import Client as ClientModel
from db.models import CreditEntry as CreditEntryModel
from db.queries import AnyRow, select_clients
from gql.clients.sorters import ClientOrder, client_ordering
from gql.context import Info
from gql.credits.statements import ENTRIES, FromArg, KindsArg, ToArg, entry_conditions
from gql.credits.types import CreditEntry
from gql.enums import ClientStatus, ConnectionStatus, ConnectionType, MailStatus, Scope
from gql.loaders import now_or_later
from gql.node import Node, register_node, to_global_id
from gql.pagination import (
    AfterArg,
    BeforeArg,
    Connection,
    FirstArg,
    LastArg,
    build_connection,
    page_request,
)
from gql.permissions import Rule, authorization_matrix
from gql.pricing.types import ClientPackagePrice, Package
from gql.reference.types import Category, CustomFieldDefinition, CustomFieldValue, Department
from gql.scalars import Money
from gql.staff.types import StaffUser
from services.clients import may_change_client
from services.custom_fields import readable_value
from services.languages import effective_language
from services.pricing import adjusted_price


@strawberry.type(description="A temporary restriction, separate from the client's status.")
class ClientBlock:
    reason: str = strawberry.field(description="Why the client was blocked.")
    blocked_at: datetime = strawberry.field(description="When the block started.")
    blocked_until: datetime | None = strawberry.field(
        description="When the block ends by itself; null until someone unblocks the client."
    )
    blocked_by_id: strawberry.Private[int | None]

    @strawberry.field(description="Who blocked the client; null if that user was removed.")
    def blocked_by(self, info: Info) -> StaffUser | None:
        if self.blocked_by_id is None:
            return None
        loader = info.context.loaders.staff_user_by_id
        return now_or_later(loader, self.blocked_by_id, StaffUser.from_optional_row)  # type: ignore[no-any-return]


def block_in_force(
    blocked_at: datetime | None, blocked_until: datetime | None, now: datetime
) -> bool:
    """Whether a block is in force at `now`: one was set and its end has not come."""
    return blocked_at is not None and (blocked_until is None or blocked_until > now)


def can_login(
    status: ClientStatus,
    blocked: bool,
    valid_till: datetime | None,
    now: datetime,
    billing_mode: bool = True,
) -> bool:
    """ACTIVE, not blocked, and (in Billing Mode) paid access not over."""
    return (
        status is ClientStatus.ACTIVE
        and not blocked
        and (not billing_mode or valid_till is None or valid_till > now)
    )


def active_block(row: AnyRow, now: datetime) -> ClientBlock | None:
    """The client's block if one is in force at `now` (an expired block is no block)."""
    if not block_in_force(row.blocked_at, row.blocked_until, now):
        return None
    return ClientBlock(
        reason=row.block_reason,
        blocked_at=row.blocked_at,
        blocked_until=row.blocked_until,
        blocked_by_id=row.blocked_by_id,
    )


@strawberry.type(description="One way a client connects, and whether it is up.")
class ConnectionInfo:
    type: ConnectionType = strawberry.field(description="SMPP, HTTP, SMTP or WEB.")
    status: ConnectionStatus = strawberry.field(description="ONLINE or OFFLINE.")
    last_seen_at: datetime | None = strawberry.field(description="When it was last up.")


NEWEST_ENTRY_FIRST = Ordering(keys=(), tiebreaker=CreditEntryModel.__table__.c.id, descending=True)


@strawberry.type(
    description="What the viewer may do to a client now: the rules the mutations apply before "
    "anything else (the role, the token's scopes, and for a manager whether the client is "
    "theirs or a sub-account of theirs). Where false, the mutation would refuse with "
    "FORBIDDEN; where true, it may still refuse the input (`userErrors`)."
)
class ClientPermissions:
    update: bool = strawberry.field(description="clientUpdate, clientsSetStatus.")
    delete: bool = strawberry.field(description="clientsDelete.")
    add_credit: bool = strawberry.field(
        description="creditAdd, creditNoteCreate (false while Billing Mode is off)."
    )
    deduct_credit: bool = strawberry.field(
        description="creditDeduct, creditEntryReverse (false while Billing Mode is off)."
    )
    block: bool = strawberry.field(description="clientBlock, clientUnblock.")
    link: bool = strawberry.field(
        description="clientLink (as either side; the other client must allow it too), clientUnlink."
    )
    impersonate: bool = strawberry.field(description="clientImpersonate.")
    set_price_adjustment: bool = strawberry.field(description="clientPriceAdjustmentSet.")
    send_login_details: bool = strawberry.field(
        description="clientLoginDetailsSend (false for a client without an e-mail address)."
    )


@strawberry.type(
    description="The newest login e-mail to a client (at creation or sent again with "
    '`clientLoginDetailsSend`), and how its delivery went: the front end shows "sent" or '
    '"failed".'
)
class LoginDetailsDelivery:
    status: MailStatus = strawberry.field(description="Where the e-mail is.")
    recipient: str = strawberry.field(description="The address it went to, as written.")
    queued_at: datetime = strawberry.field(description="When it was put in the outbox.")
    sent_at: datetime | None = strawberry.field(
        description="When the mail server accepted it; null until then."
    )
    attempts: int = strawberry.field(description="Delivery attempts so far.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is tried next, while PENDING; null otherwise."
    )
    last_error: str | None = strawberry.field(
        description="What the mail server (or the network) said on the last failed attempt; "
        "null once sent."
    )

    @classmethod
    def from_row(cls, row: Any) -> "LoginDetailsDelivery":
        pending = row.status == MailStatus.PENDING
        return cls(
            status=MailStatus(row.status),
            recipient=row.recipient,
            queued_at=row.created_at,
            sent_at=row.sent_at,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if pending else None,
            last_error=row.last_error,
        )


# Each action of ClientPermissions: the mutation whose permission classes decide it.
ACTIONS = {
    "update": "clientUpdate",
    "delete": "clientsDelete",
    "add_credit": "creditAdd",
    "deduct_credit": "creditDeduct",
    "block": "clientBlock",
    "link": "clientLink",
    "impersonate": "clientImpersonate",
    "set_price_adjustment": "clientPriceAdjustmentSet",
    "send_login_details": "clientLoginDetailsSend",
}


@cache
def _operation_rules(schema: Any) -> dict[str, Rule]:
    return {rule.operation: rule for rule in authorization_matrix(schema)}


@strawberry.type(description="A customer account.")
class Client(Node):
    login: str = strawberry.field(
        description="Unique sign-in name, lower case: 3 to 64 of a-z, 0-9, '.', '_' and '-'."
    )
    name: str | None = strawberry.field(description="Display name (person or company).")
    email: str | None = strawberry.field(description="Contact e-mail address.")
    phone: str | None = strawberry.field(description="Contact phone in E.164, e.g. +4915112345678.")
    country: str | None = strawberry.field(description='ISO 3166-1 alpha-2 code, e.g. "DE".')
    currency: str = strawberry.field(
        description="ISO 4217 code of the account's money; amounts use its minor units."
    )
    language: str | None = strawberry.field(description="Preferred language, a BCP 47 tag.")
    effective_language: str = strawberry.field(
        description="The language the cabinet is shown in: `language` if translated (or its "
        "base language), else the default language."
    )
    status: ClientStatus = strawberry.field(description="Whether access is enabled.")
    blocked: bool = strawberry.field(
        description="Whether a block is in force now (an expired block does not count)."
    )
    block: ClientBlock | None = strawberry.field(description="The block in force now, or null.")
    can_login: bool = strawberry.field(
        description="ACTIVE, not blocked, and paid access (validTill) not over, when Billing "
        "Mode is on (`systemSettings`): the client can sign in to their cabinet now."
    )
    balance: Money = strawberry.field(
        description="The sum of the client's credit ledger; negative when in debt."
    )
    credit_limit: Money = strawberry.field(description="How far the balance may go below zero.")
    valid_till: datetime | None = strawberry.field(
        description="When paid access ends; null for no end. Used only while Billing Mode is "
        "on (`systemSettings`)."
    )
    moderation: bool = strawberry.field(description="Whether the client's traffic is moderated.")
    avatar_url: str | None = strawberry.field(description="Avatar image; null for the default.")
    price_adjustment_percent: Decimal = strawberry.field(
        description="Custom increase (+) or decrease (-) applied to every package price, "
        "in percent with two decimals."
    )
    last_activity_at: datetime | None = strawberry.field(
        description="When the client was last active; null if never."
    )
    chats_count: int = strawberry.field(description="Live chat conversations so far.")
    support_requests_count: int = strawberry.field(description="Support tickets so far.")
    created_at: datetime = strawberry.field(description="When the account was created.")
    updated_at: datetime = strawberry.field(description="When the account last changed.")
    version: int = strawberry.field(
        description="Counts every change of the client (its money included): pass it back as "
        "`expectedVersion` to `clientUpdate`, `clientBlock`, `clientUnblock`, `clientLink`, "
        "`clientUnlink` or `clientPriceAdjustmentSet`, and the change is refused "
        "(STALE_VERSION) if someone else changed the client since you read it."
    )

    pk: strawberry.Private[int]
    manager_id: strawberry.Private[int | None]
    parent_id: strawberry.Private[int | None]
    billing_mode: strawberry.Private[bool]

    @classmethod
    def from_row(cls, row: AnyRow, now: datetime, settings: Settings) -> "Client":
        block = active_block(row, now)
        status = row.status
        return cls(
            id=to_global_id("Client", row.id),
            login=row.login,
            name=row.name,
            email=row.email,
            phone=row.phone,
            country=row.country,
            currency=row.currency,
            language=row.language,
            effective_language=effective_language(
                row.language, translations=settings.translations, default=settings.default_language
            ),
            status=status,
            blocked=block is not None,
            block=block,
            can_login=can_login(
                status, block is not None, row.valid_till, now, bool(row.billing_mode)
            ),
            balance=Money.of(row.balance, row.currency),
            credit_limit=Money.of(row.credit_limit, row.currency),
            valid_till=row.valid_till,
            moderation=row.moderation,
            avatar_url=row.avatar_url,
            price_adjustment_percent=row.price_adjustment_percent,
            last_activity_at=row.last_activity_at,
            chats_count=row.chats_count,
            support_requests_count=row.support_requests_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
            pk=row.id,
            manager_id=row.manager_id,
            parent_id=row.parent_id,
            billing_mode=bool(row.billing_mode),
        )

    @strawberry.field(description="The account manager responsible for the client, if any.")
    def manager(self, info: Info) -> StaffUser | None:
        if self.manager_id is None:
            return None
        loader = info.context.loaders.staff_user_by_id
        return now_or_later(loader, self.manager_id, StaffUser.from_optional_row)  # type: ignore[no-any-return]

    @strawberry.field(
        description="What the viewer may do to this client (greys out the actions the "
        "mutations would refuse)."
    )
    async def viewer_can(self, info: Info) -> ClientPermissions:
        viewer = info.context.viewer
        assert viewer is not None  # reading a client needs a token
        parent_manager_id = None
        if self.parent_id is not None and not viewer.is_admin:
            parent = await info.context.loaders.client_by_id.load(self.parent_id)
            parent_manager_id = parent.manager_id if parent is not None else None
        theirs = may_change_client(
            is_admin=viewer.is_admin,
            staff_id=viewer.staff_id,
            manager_id=self.manager_id,
            parent_manager_id=parent_manager_id,
        )
        rules = _operation_rules(info.schema)

        def allowed(operation: str) -> bool:
            rule = rules[operation]
            return (
                theirs
                and (rule.scope is None or viewer.has_scope(rule.scope))
                and (viewer.is_admin or not rule.admins_only)
            )

        can = {name: allowed(operation) for name, operation in ACTIONS.items()}
        if not self.billing_mode:  # money is not moved (BILLING_MODE_OFF)
            can["add_credit"] = can["deduct_credit"] = False
        if self.email is None:  # nowhere to send them (CONTACT_REQUIRED)
            can["send_login_details"] = False
        return ClientPermissions(**can)

    @strawberry.field(
        description="The newest login e-mail sent to the client and its delivery; null if "
        "none was ever sent."
    )
    def login_details(self, info: Info) -> LoginDetailsDelivery | None:
        loader = info.context.loaders.login_details_by_client_id
        return now_or_later(  # type: ignore[no-any-return]
            loader, self.pk, lambda row: LoginDetailsDelivery.from_row(row) if row else None
        )

    @strawberry.field(description="The client this one is a sub-account of, if any.")
    def parent(self, info: Info) -> "Client | None":
        if self.parent_id is None:
            return None
        loader = info.context.loaders.client_by_id
        return now_or_later(  # type: ignore[no-any-return]
            loader, self.parent_id, lambda row: client_from_row(info, row) if row else None
        )

    @strawberry.field(description="Sub-accounts linked to this client (newest first by default).")
    async def sub_accounts(
        self,
        info: Info,
        order_by: Annotated[
            list[ClientOrder] | None, strawberry.argument(description="Sort keys, in order.")
        ] = None,
        first: FirstArg = None,
        after: AfterArg = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> Connection["Client"]:
        ordering = client_ordering(order_by, now=info.context.now)
        page = page_request(ordering, first=first, after=after, last=last, before=before)
        loaders = info.context.loaders
        rows, more = await loaders.sub_accounts_page_by_parent_id.load((self.pk, page, ordering))
        return build_connection(
            info.context.db,
            lambda: select_clients().where(ClientModel.parent_id == self.pk),
            ordering,
            page,
            rows,
            more,
            lambda row: client_from_row(info, row),
            counter=lambda: loaders.sub_account_count_by_parent_id.load(self.pk),
        )

    @strawberry.field(
        description="The client's credit ledger, newest entry first; by kind and period if "
        "asked (a statement with balances: `creditStatement`)."
    )
    async def credit_entries(
        self,
        info: Info,
        first: FirstArg = None,
        after: AfterArg = None,
        last: LastArg = None,
        before: BeforeArg = None,
        kinds: KindsArg = None,
        from_: FromArg = None,
        to: ToArg = None,
    ) -> Connection[CreditEntry]:
        page = page_request(NEWEST_ENTRY_FIRST, first=first, after=after, last=last, before=before)
        loaders = info.context.loaders
        if kinds or from_ is not None or to is not None:
            # every client of a list asking for one filter: one statement (the loader)
            filter = (tuple(sorted(kinds or ())), from_, to)
            found = loaders.filtered_entries_page_by_client_id
            rows, more = await found.load((self.pk, page, NEWEST_ENTRY_FIRST, filter))
            return build_connection(
                info.context.db,
                lambda: select(ENTRIES).where(*entry_conditions(self.pk, kinds, from_, to)),
                NEWEST_ENTRY_FIRST,
                page,
                rows,
                more,
                CreditEntry.from_row,
                counter=lambda: loaders.filtered_entry_count_by_client_id.load((self.pk, filter)),
            )
        key = (self.pk, page, NEWEST_ENTRY_FIRST)
        rows, more = await loaders.credit_entries_page_by_client_id.load(key)
        return build_connection(
            info.context.db,
            lambda: select(CreditEntryModel.__table__).where(CreditEntryModel.client_id == self.pk),
            NEWEST_ENTRY_FIRST,
            page,
            rows,
            more,
            CreditEntry.from_row,
            counter=lambda: loaders.credit_entry_count_by_client_id.load(self.pk),
        )

    @strawberry.field(description="How the client connects, one entry per connection type.")
    async def connections(self, info: Info) -> list[ConnectionInfo]:
        rows = await info.context.loaders.connections_by_client_id.load(self.pk)
        return [
            ConnectionInfo(type=r.type, status=r.status, last_seen_at=r.last_seen_at) for r in rows
        ]

    @strawberry.field(
        description="Every custom field definition, in display order, with the client's value "
        "(null where the client has none)."
    )
    async def custom_fields(self, info: Info) -> list[CustomFieldValue]:
        loaders = info.context.loaders
        definitions = await loaders.custom_field_definitions.load("all")
        values = await loaders.custom_field_values_by_client_id.load(self.pk)
        by_definition = {row.definition_id: row.value for row in values}
        return [
            CustomFieldValue(
                definition=CustomFieldDefinition.from_row(row),
                value=readable_value(row, by_definition.get(row.id)),
            )
            for row in definitions
        ]

    @strawberry.field(description="Departments the client may reach; empty means all of them.")
    async def departments(self, info: Info) -> list[Department]:
        rows = await info.context.loaders.departments_by_client_id.load(self.pk)
        return [Department.from_row(row) for row in rows]

    @strawberry.field(description="Whether the client may reach every department (none chosen).")
    async def all_departments(self, info: Info) -> bool:
        return not await info.context.loaders.departments_by_client_id.load(self.pk)

    @strawberry.field(description="Categories the client may use; empty means all of them.")
    async def categories(self, info: Info) -> list[Category]:
        rows = await info.context.loaders.categories_by_client_id.load(self.pk)
        return [Category.from_row(row) for row in rows]

    @strawberry.field(description="Whether the client may use every category (none chosen).")
    async def all_categories(self, info: Info) -> bool:
        return not await info.context.loaders.categories_by_client_id.load(self.pk)

    @strawberry.field(
        description="Each active package priced in the client's currency: base price and the "
        "client's adjusted price. Packages without a price in that currency are left out."
    )
    async def package_prices(self, info: Info) -> list[ClientPackagePrice]:
        rows = await info.context.loaders.package_prices_by_currency.load(self.currency)
        return package_prices(rows, self.currency, self.price_adjustment_percent)


def package_prices(
    rows: Sequence[AnyRow], currency: str, percent: Decimal
) -> list[ClientPackagePrice]:
    """A client's prices from the active packages' prices in its currency (the loader's rows)."""
    return [
        ClientPackagePrice(
            package=Package.from_row(row),
            base_price=Money.of(row.amount, currency),
            price=Money.of(adjusted_price(row.amount, percent, currency), currency),
            adjustment_percent=percent,
        )
        for row in rows
    ]


def client_from_row(info: Info, row: AnyRow) -> Client:
    """The Client for a row, as of the request's time."""
    return Client.from_row(row, info.context.now, info.context.settings)


def can_read_clients(info: Info) -> bool:
    viewer = info.context.viewer
    return viewer is not None and viewer.has_scope(Scope.CLIENTS_READ)


async def fetch_clients(info: Info, ids: Sequence[int]) -> list[Client | None]:
    """Clients by primary key, or None for each when the token may not read clients."""
    if not can_read_clients(info):
        return [None] * len(ids)
    rows = await info.context.loaders.client_by_id.load_many(list(ids))
    return [client_from_row(info, row) if row is not None else None for row in rows]


register_node("Client", fetch_clients)
