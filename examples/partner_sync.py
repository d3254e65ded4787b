"""A partner integration with Clientdesk: sync every client, then record a payment, safely.

    CLIENTDESK_URL=http://127.0.0.1:8000/graphql CLIENTDESK_TOKEN=cd_... \\
        python examples/partner_sync.py

What it shows:
- paging through the whole list by cursor (`after: endCursor` until `hasNextPage` is false);
- retrying what may be retried: HTTP 429 after its Retry-After, 502/503/504 and lost
  connections with a growing pause;
- an idempotency key per payment, the same on every retry of it: if a response was lost after
  the server applied the payment, the retry gets the first answer back (`replayed: true`)
  instead of paying twice.
Needs only httpx (`pip install httpx`).
"""

import os
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx

CLIENTS_PAGE = """
query PartnerClientsPage($after: String) {
  clients(first: 100, after: $after, orderBy: [{field: CREATED_AT, direction: ASC}]) {
    nodes { id login email status balance { amount currency } }
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

    def clients(self) -> Iterator[dict[str, Any]]:
        """Every client, oldest first, a page of 100 at a time."""
        after = None
        while True:
            page = self.execute(CLIENTS_PAGE, {"after": after})["clients"]
            yield from page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

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


def main() -> None:
    api = Clientdesk(os.environ["CLIENTDESK_URL"], os.environ["CLIENTDESK_TOKEN"])
    clients = list(api.clients())
    print(f"{len(clients)} clients")
    if clients:
        paid = api.add_credit(clients[0]["id"], Decimal("10.00"), reference="partner-demo")
        print(f"credited {clients[0]['login']}: {paid['entry']['amount']}")


if __name__ == "__main__":
    main()
