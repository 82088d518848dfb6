"""The orders HTTP API: place an order (the checkout of :mod:`orders.checkout`), read
it, and mark it notified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.responses import JSONResponse

from obskit import ErrorBody, NotFound
from orders.checkout import checkout
from orders.models import OrderCreate, OrderRead
from orders.recovery import Recovery
from orders.store import OrderStore

router = APIRouter(tags=["orders"], responses={422: {"model": ErrorBody}})


async def get_store(request: Request) -> AsyncIterator[OrderStore]:
    async with request.app.state.sessions() as session:
        yield OrderStore(session)


# ``async def`` although it never awaits: FastAPI runs a plain ``def`` dependency in
# a worker thread, a thread hop on every request just to read app.state.
async def get_recovery(request: Request) -> Recovery:
    recovery: Recovery = request.app.state.recovery
    return recovery


StoreDep = Annotated[OrderStore, Depends(get_store)]
RecoveryDep = Annotated[Recovery, Depends(get_recovery)]
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200)]


@router.post(
    "/orders",
    response_model=OrderRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        402: {"model": ErrorBody, "description": "card_declined"},
        409: {"model": ErrorBody, "description": "out_of_stock or request_in_progress"},
        502: {"model": ErrorBody},
        503: {"model": ErrorBody},
        504: {"model": ErrorBody},
    },
)
async def create_order(
    data: OrderCreate,
    store: StoreDep,
    recovery: RecoveryDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Place an order: reserve its stock, charge the card, confirm; or fail and undo."""
    answer = await checkout(data, idempotency_key, store, recovery)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


@router.get("/orders/{order_id}", response_model=OrderRead, responses={404: {"model": ErrorBody}})
async def read_order(store: StoreDep, order_id: UUID) -> OrderRead:
    order = await store.get(order_id)
    if order is None:
        raise NotFound(f"Order {order_id} does not exist.", code="order_not_found")
    return OrderRead.model_validate(order)


@router.post(
    "/orders/{order_id}/notified",
    response_model=OrderRead,
    responses={404: {"model": ErrorBody}},
)
async def mark_order_notified(store: StoreDep, order_id: UUID) -> OrderRead:
    """Record that the customer was told about the order; marking it again changes nothing."""
    order = await store.mark_notified(order_id)
    if order is None:
        raise NotFound(f"Order {order_id} does not exist.", code="order_not_found")
    return OrderRead.model_validate(order)
