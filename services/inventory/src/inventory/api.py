"""The inventory's HTTP API: stock levels, and reservations that never oversell."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response, status

from inventory.models import ReservationCreate, ReservationRead, StockRead, StockUpdate
from inventory.store import InventoryStore, OutOfStock, ReservationReleased
from obskit import Conflict, ErrorBody, NotFound

router = APIRouter(responses={422: {"model": ErrorBody}})

ProductIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]


async def get_store(request: Request) -> AsyncIterator[InventoryStore]:
    async with request.app.state.sessions() as session:
        yield InventoryStore(session)


StoreDep = Annotated[InventoryStore, Depends(get_store)]


@router.get(
    "/stock/{product_id}",
    tags=["stock"],
    response_model=StockRead,
    responses={404: {"model": ErrorBody}},
)
async def read_stock(store: StoreDep, product_id: ProductIdPath) -> StockRead:
    stock = await store.get_stock(product_id)
    if stock is None:
        raise NotFound(f"Product {product_id} is not stocked.", code="product_not_found")
    return stock


@router.put("/stock/{product_id}", tags=["stock"], response_model=StockRead)
async def update_stock(store: StoreDep, product_id: ProductIdPath, data: StockUpdate) -> StockRead:
    """Set a product's stock (for labs and tests); a product not stocked yet is added."""
    return await store.set_stock(product_id, data.available)


@router.post(
    "/reservations",
    tags=["reservations"],
    response_model=ReservationRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ReservationRead, "description": "This order was reserved before"},
        409: {"model": ErrorBody, "description": "out_of_stock or reservation_released"},
    },
)
async def create_reservation(
    store: StoreDep, data: ReservationCreate, response: Response
) -> ReservationRead:
    """Reserve every item or none.

    Idempotent by ``order_id``: 201 when this request made the reservation, 200 with
    the existing one when the order was already reserved (so a retry is safe).
    Lines of the same product are merged into one.
    """
    try:
        reservation, created = await store.reserve(data.order_id, data.items)
    except OutOfStock as exc:
        raise Conflict(
            "Not enough stock for every item.", code="out_of_stock", details=exc.shortages
        ) from None
    except ReservationReleased:
        raise Conflict(
            f"The reservation of order {data.order_id} was released.",
            code="reservation_released",
        ) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return reservation


@router.get(
    "/reservations/{order_id}",
    tags=["reservations"],
    response_model=ReservationRead,
    responses={404: {"model": ErrorBody}},
)
async def read_reservation(store: StoreDep, order_id: UUID) -> ReservationRead:
    """The order's reservation, reserved or released: what orders' recovery looks up to
    finish a checkout that was interrupted."""
    reservation = await store.get_reservation(order_id)
    if reservation is None:
        raise NotFound(f"Order {order_id} has no reservation.", code="reservation_not_found")
    return reservation


@router.post(
    "/reservations/{order_id}/release",
    tags=["reservations"],
    response_model=ReservationRead,
    responses={404: {"model": ErrorBody}},
)
async def release_reservation(store: StoreDep, order_id: UUID) -> ReservationRead:
    """Give the order's units back; releasing again changes nothing."""
    reservation = await store.release(order_id)
    if reservation is None:
        raise NotFound(f"Order {order_id} has no reservation.", code="reservation_not_found")
    return reservation
