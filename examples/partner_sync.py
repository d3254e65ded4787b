"""A partner integration with Clientdesk: keep a copy of every client up to date, then record
a payment, safely.

    CLIENTDESK_URL=http://127.0.0.1:8000/graphql CLIENTDESK_TOKEN=cd_... \\
        python examples/partner_sync.py [state.json]

What it shows:
- an incremental sync: the first run reads every client from `clientChanges`, each later run
  only what changed since (deletions included), from the cursor it stored with its copy — the
  copy and the cursor are written together, so a run cut short starts again where the last
  saved page ended, and applying a change twice does no harm (versions only go up);
- retrying what may be retried: HTTP 429 after its Retry-After, 502/503/504 and lost
  connections with a growing pause;
- an idempotency key per payment, the same on every retry of it: if a response was lost after
  the server applied the payment, the retry gets the first answer back (`replayed: true`)
  instead of paying twice.
Needs only httpx (`pip install httpx`).
"""

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

CHANGES_PAGE = """
query PartnerClientChanges($after: String) {
  clientChanges(first: 100, after: $after) {
    nodes {
      clientId version deleted
      client { login email status balance { amount currency } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CREDIT_ADD = """
mutation PartnerCreditAdd($input: CreditAddInput!) {
  creditAdd(input: $input) {
    entry { id amount { amount currency } }
    replayed
    userErrors { field code message }
  }
}
"""
RETRY_STATUSES = {429, 502, 503, 504}


class ClientdeskError(Exception):
    """A request the API refused (GraphQL errors), or that kept failing."""


class Clientdesk:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}"}, timeout=30, transport=transport
        )
        self.url = url
        self.attempts = attempts
        self.sleep = sleep

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The operation's data; retried on rate limits, gateway errors and lost connections.
        Only send a mutation through here if it carries an idempotency key."""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.http.post(
                    self.url, json={"query": query, "variables": variables or {}}
                )
            except (httpx.TransportError, httpx.TimeoutException):
                if attempt == self.attempts:
                    raise
                self.sleep(min(2**attempt, 30))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.attempts:
                retry_after = response.headers.get("Retry-After")
                self.sleep(float(retry_after) if retry_after else min(2**attempt, 30))
                continue
            body = response.json()
            if body.get("errors"):
                codes = [error.get("extensions", {}).get("code") for error in body["errors"]]
                raise ClientdeskError(f"{codes}: {body['errors'][0]['message']}")
            return body["data"]  # type: ignore[no-any-return]
        raise ClientdeskError("no answer after retries")

    def changes(self, after: str | None) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """The changes after the cursor `after` (None: every client), a page at a time, each
        with the cursor to store once it is applied."""
        while True:
            page = self.execute(CHANGES_PAGE, {"after": after})["clientChanges"]
            after = page["pageInfo"]["endCursor"] or after
            yield page["nodes"], after
            if not page["pageInfo"]["hasNextPage"]:
                return

    def add_credit(
        self, client_id: str, amount: Decimal, *, reference: str, key: str | None = None
    ) -> dict[str, Any]:
        """Record a payment once, however often the request has to be sent."""
        payload = self.execute(
            CREDIT_ADD,
            {
                "input": {
                    "clientId": client_id,
                    "amount": str(amount),
                    "paymentMethod": "BANK_TRANSFER",
                    "paymentReference": reference,
                    "idempotencyKey": key or str(uuid.uuid4()),
                }
            },
        )["creditAdd"]
        if payload["userErrors"]:
            raise ClientdeskError(str(payload["userErrors"]))
        return payload  # type: ignore[no-any-return]


class Replica:
    """The partner's own copy of the clients and where the feed was left, in one JSON file
    (written whole and renamed into place: a crash leaves the last saved page)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.cursor: str | None = saved.get("cursor")
        self.clients: dict[str, dict[str, Any]] = saved.get("clients", {})

    def apply(self, change: dict[str, Any]) -> None:
        held = self.clients.get(change["clientId"])
        if change["deleted"]:
            self.clients.pop(change["clientId"], None)
        elif change["client"] is not None and (held is None or change["version"] > held["v"]):
            self.clients[change["clientId"]] = {**change["client"], "v": change["version"]}

    def save(self, cursor: str | None) -> None:
        self.cursor = cursor
        staged = self.path.with_suffix(".tmp")
        staged.write_text(json.dumps({"cursor": cursor, "clients": self.clients}))
        staged.replace(self.path)


def sync(api: Clientdesk, replica: Replica) -> int:
    """Bring the copy up to date; the number of changes read."""
    read = 0
    for changes, cursor in api.changes(replica.cursor):
        for change in changes:
            replica.apply(change)
        replica.save(cursor)
        read += len(changes)
    return read


def main() -> None:
    api = Clientdesk(os.environ["CLIENTDESK_URL"], os.environ["CLIENTDESK_TOKEN"])
    replica = Replica(Path(sys.argv[1] if len(sys.argv) > 1 else "clientdesk-copy.json"))
    read = sync(api, replica)
    print(f"{read} changes read; {len(replica.clients)} clients in the copy")
    if replica.clients:
        client_id, client = next(iter(replica.clients.items()))
        paid = api.add_credit(client_id, Decimal("10.00"), reference="partner-demo")
        print(f"credited {client['login']}: {paid['entry']['amount']}")


if __name__ == "__main__":
    main()
