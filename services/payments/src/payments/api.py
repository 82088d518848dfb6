"""The payments HTTP API: charge an order once, read its charge, refund it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status

from obskit import Conflict, DownstreamUnavailable, ErrorBody, NotFound, ServiceError
from payments.bank import BankUnavailable, SimulatedBank
from payments.models import ChargeCreate, ChargeRead
from payments.store import ChargeStore, NotRefundable

router = APIRouter(tags=["charges"], responses={422: {"model": ErrorBody}})


class CardDeclined(ServiceError):
    status_code, code = 402, "card_declined"


async def get_store(request: Request) -> AsyncIterator[ChargeStore]:
    async with request.app.state.sessions() as session:
        yield ChargeStore(session)


# ``async def`` although it never awaits: FastAPI runs a plain ``def`` dependency in a
# worker thread, a thread hop on every request just to read app.state.
async def get_bank(request: Request) -> SimulatedBank:
    bank: SimulatedBank = request.app.state.bank
    return bank


StoreDep = Annotated[ChargeStore, Depends(get_store)]
BankDep = Annotated[SimulatedBank, Depends(get_bank)]


def _not_found(order_id: UUID) -> NotFound:
    return NotFound(f"Order {order_id} has no charge.", code="charge_not_found")


@router.post(
    "/charges",
    response_model=ChargeRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ChargeRead, "description": "This order was charged before"},
        402: {"model": ErrorBody, "description": "card_declined"},
        503: {"model": ErrorBody, "description": "bank_unavailable"},
    },
)
async def create_charge(
    store: StoreDep, bank: BankDep, data: ChargeCreate, response: Response
) -> ChargeRead:
    """Charge the order's card at the bank.

    Idempotent by ``order_id``: a repeat answers from the stored charge (200, or
    402 again if it was declined) and never calls the bank a second time.
    """
    try:
        charge, created = await store.charge(data, bank)
    except BankUnavailable:
        raise DownstreamUnavailable(
            "The bank is unavailable; nothing was charged.", code="bank_unavailable"
        ) from None
    if charge.status == "declined":
        raise CardDeclined("The card was declined.", details=[{"charge_id": str(charge.charge_id)}])
    if not created:
        response.status_code = status.HTTP_200_OK
    return charge


@router.get("/charges/{order_id}", response_model=ChargeRead, responses={404: {"model": ErrorBody}})
async def read_charge(store: StoreDep, order_id: UUID) -> ChargeRead:
    charge = await store.get(order_id)
    if charge is None:
        raise _not_found(order_id)
    return charge


@router.post(
    "/charges/{order_id}/refund",
    response_model=ChargeRead,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def refund_charge(store: StoreDep, order_id: UUID) -> ChargeRead:
    """Refund the order's charge; refunding again changes nothing.

    The simulated bank settles refunds offline, so this is not a bank call.
    """
    try:
        charge = await store.refund(order_id)
    except NotRefundable:
        raise Conflict(
            f"The charge of order {order_id} was declined: there is nothing to refund.",
            code="charge_not_refundable",
        ) from None
    if charge is None:
        raise _not_found(order_id)
    return charge
