"""Orders and their outbox in the orders' own database.

Every change of an order's outcome and the event that announces it are written in
ONE transaction (the *transactional outbox*): either both are stored or neither
is, so no order is confirmed without its ``OrderPlaced`` event and no event
announces an order that was never stored. :mod:`orders.outbox` publishes the
events later, whether or not the broker was up when the order was placed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contracts import OrderFailed, OrderPlaced
from obskit import ErrorBody, ServiceError, without_deadline
from orders.models import OrderCreate, OrderRead


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData()


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    # Twenty lines of 100 units at 10_000_000 cents overflow a 32-bit integer.
    total_cents: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str | None] = mapped_column(String(254))
    # NULLs are never equal, so any number of orders may come without a key.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The first answer, kept so that a retry with the same key gets it again.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """An event waiting to be published (``published_at`` is NULL) or already sent."""

    __tablename__ = "outbox"

    # SQLite only autoincrements an INTEGER primary key; PostgreSQL gets a bigint.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    #: The event exactly as it will be published: JSON text.
    payload: Mapped[str] = mapped_column(Text)
    #: The W3C trace context of the request that wrote the event, for the relay.
    traceparent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


def outbox_message(event: OrderPlaced | OrderFailed) -> OutboxMessage:
    """The outbox row of ``event``, carrying the trace it happens in."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the current span's context, as a ``traceparent`` header
    return OutboxMessage(
        event_id=event.event_id,
        event_type=event.type,
        payload=event.model_dump_json(),
        traceparent=carrier.get("traceparent"),
    )


def error_body(error: ServiceError) -> dict[str, Any]:
    """The JSON body the app answers for ``error`` (see :mod:`obskit._errors`)."""
    detail = {"code": error.code, "message": error.message, "details": error.details}
    return ErrorBody.model_validate({"error": detail}).model_dump(exclude_none=True)


class OrderStore:
    """Reads and writes orders; every final outcome goes out with its event."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_pending(
        self, data: OrderCreate, idempotency_key: str | None, request_hash: str
    ) -> Order | None:
        """Store a new pending order and commit; None when the idempotency key is taken."""
        order = Order(
            id=uuid.uuid4(),
            status="pending",
            items=[item.model_dump() for item in data.items],
            total_cents=data.total_cents,
            email=data.email,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        self.session.add(order)
        try:
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()
            return None
        return order

    async def get(self, order_id: uuid.UUID) -> Order | None:
        return await self.session.get(Order, order_id)

    async def get_by_key(self, idempotency_key: str) -> Order | None:
        orders = await self.session.scalars(
            select(Order).where(Order.idempotency_key == idempotency_key)
        )
        return orders.first()

    async def confirm(self, order: Order) -> None:
        """Confirm ``order`` and queue its ``OrderPlaced``, in one transaction."""
        order.status = "confirmed"
        order.updated_at = _now()
        body = OrderRead.model_validate(order).model_dump(mode="json")
        event = OrderPlaced(
            event_id=uuid.uuid4(),
            order_id=order.id,
            occurred_at=order.updated_at,
            total_cents=order.total_cents,
            email=order.email,
        )
        await self._finish(order, 201, body, event)

    async def fail(self, order: Order, reason: str, error: ServiceError) -> None:
        """Fail ``order`` and queue its ``OrderFailed``, in one transaction.

        ``error`` is what the client is answered; it is kept for replays.
        """
        order.status, order.failure_reason = "failed", reason
        order.updated_at = _now()
        event = OrderFailed(
            event_id=uuid.uuid4(),
            order_id=order.id,
            occurred_at=order.updated_at,
            total_cents=order.total_cents,
            email=order.email,
            reason=reason,
        )
        await self._finish(order, error.status_code, error_body(error), event)

    async def _finish(
        self, order: Order, status: int, body: dict[str, Any], event: OrderPlaced | OrderFailed
    ) -> None:
        order.response_status, order.response_body = status, body
        self.session.add(order)
        self.session.add(outbox_message(event))
        # Whatever was done downstream (stock reserved, a card charged, or undone), the
        # outcome is recorded even when our caller has given up: else the order would
        # stay pending for ever, and a retry with its key be told "in progress".
        with without_deadline():
            await self.session.commit()

    async def mark_notified(self, order_id: uuid.UUID) -> Order | None:
        """Record that the customer was notified (the first time only); None if unknown."""
        await self.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.notified_at.is_(None))
            .values(notified_at=_now())
        )
        await self.session.commit()
        return await self.get(order_id)
