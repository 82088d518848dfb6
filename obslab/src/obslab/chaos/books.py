"""The shop's books over a chaos experiment, read from the services' own databases:
after the faults are rolled back and the checkout's recovery has run, no order placed
since the experiment began is pending, the money kept equals what the confirmed
orders cost, the stock taken equals what they bought, and each confirmed order was
notified exactly once.

Read with SQL, not through the services' APIs: the books are what is stored, and an
API answer could hide a row (the gateway shows a client only its own orders). The
lab's PostgreSQL holds one database per service (``obslab_<service>``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from obslab.native.lab import LabSettings


@dataclass
class Opening:
    """What the books are compared with: when the experiment began, and the stock then."""

    at: datetime
    stock: dict[int, int] = field(default_factory=dict)


async def _rows(settings: LabSettings, service: str, query: str, *args: Any) -> list[Any]:
    connection = await asyncpg.connect(settings.database_url(service))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def _stock(settings: LabSettings) -> dict[int, int]:
    rows = await _rows(settings, "inventory", "SELECT product_id, available FROM stock")
    return {row["product_id"]: row["available"] for row in rows}


class NoBooks(Exception):
    """The services' databases cannot be read from here (a stack other than the lab's)."""


def open_books(settings: LabSettings, at: datetime) -> Opening:
    """The opening of the books, at the time ``at`` (orders after it count);
    :class:`NoBooks` when the lab's PostgreSQL does not answer."""
    try:
        return Opening(at, asyncio.run(_stock(settings)))
    except (OSError, asyncpg.PostgresError) as exc:
        raise NoBooks(f"the books cannot be read: {exc}") from exc


async def _problems(settings: LabSettings, opening: Opening) -> list[str]:
    orders = await _rows(
        settings,
        "orders",
        "SELECT id, status, total_cents, items, email, notified_at FROM orders"
        " WHERE created_at >= $1",
        opening.at,
    )
    jobs = await _rows(settings, "orders", "SELECT count(*) AS n FROM checkout_jobs")
    ids = [row["id"] for row in orders]
    charges = await _rows(
        settings,
        "payments",
        "SELECT order_id, amount_cents FROM charges"
        " WHERE status = 'succeeded' AND order_id = ANY($1::uuid[])",
        ids,
    )
    notified = await _rows(
        settings,
        "notifications",
        "SELECT order_id, count(*) AS n FROM notifications WHERE event_type = 'order.placed'"
        " AND order_id = ANY($1::uuid[]) GROUP BY order_id",
        ids,
    )
    stock = await _stock(settings)

    confirmed = [row for row in orders if row["status"] == "confirmed"]
    problems = []
    if pending := [row for row in orders if row["status"] == "pending"]:
        problems.append(f"{len(pending)} orders still pending")
    if jobs[0]["n"]:
        problems.append(f"{jobs[0]['n']} checkout jobs still open")
    kept = sum(row["amount_cents"] for row in charges)
    owed = sum(row["total_cents"] for row in confirmed)
    if kept != owed:
        problems.append(f"charges kept {kept} cents, confirmed orders cost {owed}")
    bought: dict[int, int] = {}
    for row in confirmed:
        for item in _items(row["items"]):
            bought[item["product_id"]] = bought.get(item["product_id"], 0) + item["quantity"]
    for product, before in opening.stock.items():
        taken = before - stock.get(product, 0)
        if taken != bought.get(product, 0):
            problems.append(
                f"product {product}: {taken} units taken, {bought.get(product, 0)} sold"
            )
    # Orders is told of each notification (notified_at); one with an e-mail address
    # has exactly one e-mail sent for its confirmation.
    counts = {row["order_id"]: row["n"] for row in notified}
    unnotified = [
        row
        for row in confirmed
        if row["notified_at"] is None or counts.get(row["id"], 0) != (1 if row["email"] else 0)
    ]
    if unnotified:
        problems.append(f"{len(unnotified)} confirmed orders not notified exactly once")
    return problems


def _items(value: Any) -> list[dict[str, int]]:
    """An order's items: JSON text, as asyncpg gives a ``json`` column back."""
    items: list[dict[str, int]] = json.loads(value) if isinstance(value, str) else value
    return items


def balance(settings: LabSettings, opening: Opening, deadline_s: float) -> dict[str, Any]:
    """Whether the books balance within ``deadline_s`` (the recovery's settle time and
    retries run meanwhile): ``{"ok": ..., "problems": [...], "after_s": ...}``."""
    started = time.monotonic()
    while True:
        problems = asyncio.run(_problems(settings, opening))
        waited = time.monotonic() - started
        if not problems or waited > deadline_s:
            return {"ok": not problems, "problems": problems, "after_s": round(waited, 1)}
        time.sleep(2)
