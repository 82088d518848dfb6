"""A learner's hands on the shop: orders placed through the edge, as the lab's demo
client, for labs whose start needs a little traffic to look at."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from obslab.labs.sources import Unreachable
from obslab.token import DEV_CLIENT_ID, DEV_CLIENT_SECRET

#: The simulated bank's test cards (payments' bank.py): one always charged, one always declined.
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


@dataclass
class Placed:
    status: int
    trace_id: str


class Shop:
    def __init__(self, edge: str) -> None:
        self.edge = edge
        self.http = httpx.Client(base_url=edge, timeout=30)
        self._headers: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def _bearer(self) -> dict[str, str]:
        if not self._headers:
            answer = self._post(
                "/api/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
            )
            answer.raise_for_status()
            self._headers = {"authorization": f"Bearer {answer.json()['access_token']}"}
        return self._headers

    def _post(self, path: str, **kwargs: object) -> httpx.Response:
        try:
            return self.http.post(path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise Unreachable(f"the shop at {self.edge} does not answer: {exc}") from exc

    def order(self, product_id: int = 1, card: str = GOOD_CARD) -> Placed:
        """Place one order of one ``product_id``; its status and trace id."""
        body = {
            "items": [{"product_id": product_id, "quantity": 1}],
            "card": {"number": card, "expiry": "12/39", "cvc": "123"},
        }
        response = self._post("/api/orders", json=body, headers=self._bearer())
        return Placed(response.status_code, response.headers.get("x-trace-id", ""))

    def browse(self) -> int:
        """Read the catalog once; the status."""
        try:
            return self.http.get("/api/products").status_code
        except httpx.HTTPError as exc:
            raise Unreachable(f"the shop at {self.edge} does not answer: {exc}") from exc
