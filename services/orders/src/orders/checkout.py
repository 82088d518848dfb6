"""Checkout: reserve the stock, charge the card, confirm; or fail and undo.

Checkout is a small saga across two services. Each step that fails undoes the
ones before it (the charge failing releases the reservation), and every outcome
is stored with its event in one transaction (see :mod:`orders.store`). An
``Idempotency-Key`` makes a retried checkout safe: the first request with a key
stores a pending order before it calls anyone, and a retry gets the first answer
back instead of placing a second order.

Nothing is left unresolved (:mod:`orders.recovery`): the pending order is stored
with a job that ends it if its checkout never does (a process that dies mid-checkout;
a retry with its key meanwhile gets 409 ``request_in_progress``), and a failed order
with a job that refunds its charge and releases its stock, retried until the peers
accept. The checkout and the recovery only ever end a *pending* order, so whichever
comes second answers what the first stored.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any, NamedTuple
from uuid import UUID

import httpx
import structlog
from fastapi import status
from prometheus_client import Counter

from contracts import PaymentCard
from obskit import (
    BulkheadFull,
    CircuitOpen,
    Conflict,
    DownstreamError,
    ServiceClient,
    ServiceError,
)
from orders.models import OrderCreate, OrderItem
from orders.recovery import Recovery
from orders.store import OrderStore

log = structlog.get_logger("orders.checkout")

ORDERS_PLACED = Counter("obslab_orders_placed_total", "Orders confirmed: stock reserved, paid.")
ORDERS_FAILED = Counter(
    "obslab_orders_failed_total",
    "Orders that failed, by reason (out_of_stock, card_declined, payment_unavailable, ...).",
    ["reason"],
)


class PaymentRequired(ServiceError):
    status_code, code = 402, "payment_required"


class Unprocessable(ServiceError):
    status_code, code = 422, "unprocessable"


class Answer(NamedTuple):
    """What the client is answered: the order's stored status and body."""

    status: int
    body: dict[str, Any] | None
    #: Whether it is the stored answer of an earlier request with the same key.
    replayed: bool = False


class Failure(NamedTuple):
    """Why a checkout step failed, and the error the client is answered."""

    reason: str
    error: ServiceError
    #: Whether the step may have been done after all (its answer was lost).
    uncertain: bool = False


async def checkout(
    data: OrderCreate,
    idempotency_key: str | None,
    store: OrderStore,
    recovery: Recovery,
) -> Answer:
    """Place an order: reserve its stock, charge the card, confirm; or fail, undo and
    raise the error the client is answered."""
    inventory, payments = recovery.inventory, recovery.payments
    fingerprint = request_hash(data)
    settle_s = recovery.settings.recovery_settle_s
    # The order is stored (and committed) before anyone is called: the unique key makes
    # a concurrent duplicate fail here, before it could reserve or charge anything.
    order = await store.create_pending(data, idempotency_key, fingerprint, settle_s)
    if order is None:
        if idempotency_key is None:  # the key is the only unique value an order brings
            raise RuntimeError("an order without an idempotency key collided")
        return await replay(store, idempotency_key, fingerprint)
    structlog.contextvars.bind_contextvars(order_id=str(order.id))

    failure = await reserve_stock(inventory, order.id, data.items)
    reserved, charged = failure is None or failure.uncertain, False
    if failure is None and order.total_cents > 0:  # a free order has nothing to charge
        failure = await charge_card(payments, order.id, order.total_cents, data.card)
        charged = failure is not None and failure.uncertain
    if failure is not None:
        settles_at = order.created_at + timedelta(seconds=settle_s)
        if not await store.fail(order, failure.reason, failure.error, settles_at):
            return await stored_answer(store, order.id)  # the recovery ended it first
        ORDERS_FAILED.labels(failure.reason).inc()
        log.warning("order.failed", reason=failure.reason, status=failure.error.status_code)
        # What the failed order may hold goes back now; its job, stored with the
        # failure, makes sure of it once nothing can land any more, and keeps asking
        # if a peer refuses now.
        await recovery.compensate_now(order.id, refund=charged, release=reserved)
        raise failure.error

    body = await store.confirm(order)
    if body is None:
        return await stored_answer(store, order.id)
    ORDERS_PLACED.inc()
    log.info("order.confirmed", total_cents=order.total_cents)
    return Answer(status.HTTP_201_CREATED, body)


def request_hash(data: OrderCreate) -> str:
    """A fingerprint of the request, to tell a retry from another request with the same key."""
    body = data.model_dump(mode="json")
    # A bare hash of a card number can be reversed by trying every number (PCI DSS
    # forbids storing one), so only what may be stored of the card goes in.
    body["card"] = {"last4": data.card.number.get_secret_value()[-4:], "expiry": data.card.expiry}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def reserve_stock(
    inventory: ServiceClient, order_id: UUID, items: list[OrderItem]
) -> Failure | None:
    """Reserve every item of the order (inventory does all or nothing)."""
    lines = [{"product_id": i.product_id, "quantity": i.quantity} for i in items]
    try:
        # Idempotent by order_id (the same order again returns its reservation): safe to retry.
        response = await inventory.request(
            "POST",
            "/reservations",
            json={"order_id": str(order_id), "items": lines},
            idempotent=True,
        )
    except (CircuitOpen, BulkheadFull) as exc:
        return Failure("inventory_unavailable", exc)  # refused here: nothing was sent
    except DownstreamError as exc:
        # A timeout may hide a reservation that was made after all: the failed order's
        # compensation releases it.
        return Failure("inventory_unavailable", exc, uncertain=True)
    if response.status_code in (status.HTTP_200_OK, status.HTTP_201_CREATED):
        return None
    if response.status_code == status.HTTP_409_CONFLICT and _code(response) == "out_of_stock":
        shortages = response.json()["error"].get("details")
        error = Conflict("Not enough stock for every item.", code="out_of_stock", details=shortages)
        return Failure("out_of_stock", error)
    return Failure("inventory_rejected", _unexpected(inventory, response))


async def charge_card(
    payments: ServiceClient, order_id: UUID, amount_cents: int, card: PaymentCard
) -> Failure | None:
    """Charge the order's total to the card."""
    charge = {
        "order_id": str(order_id),
        "amount_cents": amount_cents,
        "currency": "USD",
        "card": card.reveal(),
    }
    try:
        # Idempotent by order_id (payments never charges an order twice): safe to retry.
        response = await payments.request("POST", "/charges", json=charge, idempotent=True)
    except (CircuitOpen, BulkheadFull) as exc:
        return Failure("payment_unavailable", exc)  # refused here: nothing was sent
    except DownstreamError as exc:
        # A timeout leaves the charge's outcome unknown: payments may have charged the
        # card after all. The failed order's compensation reads the charge and refunds it.
        return Failure("payment_unavailable", exc, uncertain=True)
    if response.status_code in (status.HTTP_200_OK, status.HTTP_201_CREATED):
        return None
    if response.status_code == status.HTTP_402_PAYMENT_REQUIRED:
        return Failure(
            "card_declined", PaymentRequired("The card was declined.", code="card_declined")
        )
    return Failure("payment_rejected", _unexpected(payments, response))


async def stored_answer(store: OrderStore, order_id: UUID) -> Answer:
    """What the order's outcome stored: the answer when someone else ended it."""
    stored = await store.get(order_id, fresh=True)
    if stored is None or stored.response_status is None:
        raise RuntimeError("an order that is not pending has no stored answer")
    return Answer(stored.response_status, stored.response_body)


async def replay(store: OrderStore, idempotency_key: str, fingerprint: str) -> Answer:
    """The answer to a request whose idempotency key an earlier request already used."""
    first = await store.get_by_key(idempotency_key)
    if first is None:
        raise RuntimeError("the idempotency key collided, yet no order has it")
    if first.request_hash != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was used for a different request.",
            code="idempotency_key_reused",
        )
    if first.response_status is None:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.",
            code="request_in_progress",
            headers={"Retry-After": "1"},
        )
    log.info("order.replayed", order_id=str(first.id), status=first.response_status)
    return Answer(first.response_status, first.response_body, replayed=True)


def _code(response: httpx.Response) -> str | None:
    """The error code of a downstream's JSON error body, if it has one."""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _unexpected(client: ServiceClient, response: httpx.Response) -> DownstreamError:
    """A 4xx the contract does not allow: a bug on one side or the other, so a 502."""
    return DownstreamError(
        f"{client.peer_service} refused the request with {response.status_code}.",
        details=[{"peer_service": client.peer_service, "status": response.status_code}],
    )
