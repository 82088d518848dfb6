"""The obslab command's hands on the shop: the lab's demo client and its bearer token,
the order every lab, experiment and load run places, and a small client that places it
through the edge (for labs whose start needs a little traffic to look at)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from obslab.errors import Unreachable

#: The gateway's dev client (gateway.settings.DEV_CLIENT_ID / DEV_CLIENT_SECRET): the
#: command never imports a service, so the two public values are repeated here (a test
#: keeps them the same).
DEV_CLIENT_ID = "obslab-lab"
DEV_CLIENT_SECRET = "obslab-lab-dev-secret"
#: The simulated bank's test cards (payments' bank.py): one always charged, one always declined.
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


def order_body(product_id: int = 1, card: str = GOOD_CARD, quantity: int = 1) -> dict[str, Any]:
    """The body of ``POST /api/orders`` for ``quantity`` of one product, paid by ``card``,
    with an address for its confirmation e-mail (the simulated sender sends nothing)."""
    return {
        "items": [{"product_id": product_id, "quantity": quantity}],
        "card": {"number": card, "expiry": "12/39", "cvc": "123"},
        "email": "learner@example.com",
    }


def request_token(
    http: httpx.Client,
    scope: str = "",
    client: tuple[str, str] = (DEV_CLIENT_ID, DEV_CLIENT_SECRET),
) -> httpx.Response:
    """Ask the gateway (``http``'s base URL is the edge) for a client-credentials token."""
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return http.post("/api/auth/token", data=form, auth=client)


def bearer(http: httpx.Client) -> dict[str, str]:
    """The demo client's ``authorization`` header; none when the gateway gives no token
    (a caller that needs one then sees the shop's own 401)."""
    try:
        answer = request_token(http)
    except httpx.HTTPError:
        return {}
    if answer.status_code != 200:
        return {}
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


@dataclass
class Placed:
    status: int
    trace_id: str


class Shop:
    """Orders and catalog reads through the edge; :class:`Unreachable` when it is down."""

    def __init__(self, edge: str) -> None:
        self.edge = edge
        self.http = httpx.Client(base_url=edge, timeout=30)
        self._headers: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def _bearer(self) -> dict[str, str]:
        if not self._headers:
            try:
                answer = request_token(self.http)
            except httpx.HTTPError as exc:
                raise Unreachable(f"the shop at {self.edge} does not answer: {exc}") from exc
            answer.raise_for_status()
            self._headers = {"authorization": f"Bearer {answer.json()['access_token']}"}
        return self._headers

    def order(self, product_id: int = 1, card: str = GOOD_CARD) -> Placed:
        """Place one order of one ``product_id``; its status and trace id."""
        headers = self._bearer()
        try:
            response = self.http.post(
                "/api/orders", json=order_body(product_id, card), headers=headers
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"the shop at {self.edge} does not answer: {exc}") from exc
        return Placed(response.status_code, response.headers.get("x-trace-id", ""))

    def browse(self) -> int:
        """Read the catalog once; the status."""
        try:
            return self.http.get("/api/products").status_code
        except httpx.HTTPError as exc:
            raise Unreachable(f"the shop at {self.edge} does not answer: {exc}") from exc
