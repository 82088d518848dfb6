"""Charges in the payments database: one per order, charged at the bank at most once.

A charge's row is inserted *before* the bank is called and committed after it,
in one transaction. The row's unique ``order_id`` makes a concurrent request for
the same order wait until that transaction ends, then fail to insert and return
the charge the first one stored: one order never reaches the bank twice. When the
bank fails, the transaction is rolled back and nothing is stored, so a retry may
charge. The price is one database connection held for the bank's latency: the
pool size bounds how many charges run at once (``obslab_pool_connections`` shows
it filling when the bank is slow).

Only the card's brand and last four digits are stored; never its number or CVC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from sqlalchemy import CursorResult, DateTime, Integer, MetaData, String, Uuid, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from obskit import without_deadline
from payments.bank import BankUnavailable, SimulatedBank
from payments.models import ChargeCreate, ChargeRead

log = structlog.get_logger("payments.store")

PAYMENTS = Counter(
    "obslab_payments",
    "Charges attempted at the bank, by outcome: succeeded, declined or bank_error.",
    ["outcome"],
)
REFUNDS = Counter(
    "obslab_refunds",
    "Charges refunded (each once, however often its refund is asked for).",
)
REFUNDED_CENTS = Counter("obslab_refunded_cents", "Money given back by refunds, in cents.")
PAYMENT_AMOUNT = Histogram(
    "obslab_payment_amount_usd",
    "Amounts of the charges that succeeded, in dollars.",
    buckets=(5, 10, 25, 50, 100, 250, 500, 1000),
)


class Base(DeclarativeBase):
    metadata = MetaData()


def _now() -> datetime:
    return datetime.now(UTC)


class Charge(Base):
    __tablename__ = "charges"

    charge_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    #: pending (only ever inside the charging transaction) | succeeded | declined | refunded
    status: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    card_brand: Mapped[str] = mapped_column(String(16))
    card_last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class NotRefundable(Exception):
    """Only a charge that succeeded can be refunded."""


class ChargeStore:
    """Reads, makes and refunds charges."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: uuid.UUID) -> ChargeRead | None:
        charge = await self.session.scalar(select(Charge).where(Charge.order_id == order_id))
        return ChargeRead.model_validate(charge) if charge is not None else None

    async def charge(self, data: ChargeCreate, bank: SimulatedBank) -> tuple[ChargeRead, bool]:
        """Charge the order once; return the charge and whether this call made it.

        A repeat returns the stored charge without calling the bank. Raises
        :class:`BankUnavailable` (nothing stored) when the bank fails.
        """
        existing = await self.get(data.order_id)
        if existing is not None:
            return existing, False

        charge = Charge(
            order_id=data.order_id,
            status="pending",
            amount_cents=data.amount_cents,
            currency=data.currency,
            card_brand=data.card.brand,
            card_last4=data.card.last4,
        )
        self.session.add(charge)
        try:
            await self.session.flush()  # a concurrent charge of this order waits here
        except IntegrityError:
            await self.session.rollback()
            existing = await self.get(data.order_id)
            if existing is None:  # cannot happen: the row that conflicted is committed
                raise
            return existing, False

        try:
            answer = await bank.authorize(data.card, data.amount_cents)
        except BankUnavailable:
            await self.session.rollback()
            PAYMENTS.labels("bank_error").inc()
            log.warning("payment.bank_unavailable", order_id=str(data.order_id))
            raise

        charge.status = "succeeded" if answer == "approved" else "declined"
        charge.updated_at = _now()
        # The bank has answered: what it did is recorded even when our caller has
        # given up (a charge made and not stored would be charged again).
        with without_deadline():
            await self.session.commit()
        PAYMENTS.labels(charge.status).inc()
        if charge.status == "succeeded":
            PAYMENT_AMOUNT.observe(data.amount_cents / 100)
        log.info(
            f"payment.{charge.status}",
            order_id=str(data.order_id),
            amount_cents=data.amount_cents,
            card_brand=charge.card_brand,
        )
        return ChargeRead.model_validate(charge), True

    async def refund(self, order_id: uuid.UUID) -> ChargeRead | None:
        """Refund a charge that succeeded; refunding it again changes nothing."""
        # An UPDATE's result is a CursorResult, which counts the rows it changed;
        # SQLAlchemy types execute() for any statement, hence the cast.
        refunded = cast(
            "CursorResult[Any]",
            await self.session.execute(
                update(Charge)
                .where(Charge.order_id == order_id, Charge.status == "succeeded")
                .values(status="refunded", updated_at=_now())
            ),
        )
        await self.session.commit()
        charge = await self.get(order_id)
        if charge is None:
            return None
        if charge.status == "declined":
            raise NotRefundable
        if refunded.rowcount == 1:
            REFUNDS.inc()
            REFUNDED_CENTS.inc(charge.amount_cents)
            # On the request's span too: a trace shows which call gave the money back.
            trace.get_current_span().add_event(
                "payment.refunded", {"order.id": str(order_id), "amount_cents": charge.amount_cents}
            )
            log.info("payment.refunded", order_id=str(order_id), amount_cents=charge.amount_cents)
        return charge
