"""Orders and their outbox in the orders' own database.

Every change of an order's outcome and the event that announces it are written in
ONE transaction (the *transactional outbox*): either both are stored or neither
is, so no order is confirmed without its ``OrderPlaced`` event and no event
announces an order that was never stored. :mod:`orders.outbox` publishes the
events later, whether or not the broker was up when the order was placed.

What the checkout still owes is stored the same way (:class:`CheckoutJob`): a
pending order is written with a job to resolve it, a failed order with a job to
give back what its peers may still hold, each in the transaction of the state
change, and :mod:`orders.recovery` runs them until they are done. An outcome is
written only over a pending order (``WHERE status = 'pending'``): the checkout and
the recovery never both finish one order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from opentelemetry import propagate
from sqlalchemy import (
    JSON,
    BigInteger,
    CursorResult,
    DateTime,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    delete,
    func,
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


class CheckoutJob(Base):
    """What the checkout of one order still owes, until :mod:`orders.recovery` has done it.

    ``resolve``: the order is pending; if its checkout never finishes (its process
    died), look up what inventory and payments did and confirm or fail it.
    ``compensate``: the order failed; refund its charge and release its stock, if any.
    A job is done only when run after ``settles_at``: by then no request of the
    checkout can still be under way (each peer refuses to start work past the
    caller's deadline), so what the peers report is final.
    """

    __tablename__ = "checkout_jobs"

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    settles_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The checkout's trace context: the recovery's span links to it.
    traceparent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


def _traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the current span's context, as a ``traceparent`` header
    return carrier.get("traceparent")


def outbox_message(event: OrderPlaced | OrderFailed) -> OutboxMessage:
    """The outbox row of ``event``, carrying the trace it happens in."""
    return OutboxMessage(
        event_id=event.event_id,
        event_type=event.type,
        payload=event.model_dump_json(),
        traceparent=_traceparent(),
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
        self, data: OrderCreate, idempotency_key: str | None, request_hash: str, settle_s: float
    ) -> Order | None:
        """Store a new pending order with the job that resolves it if its checkout never
        ends, and commit; None when the idempotency key is taken."""
        now = _now()
        settles_at = now + timedelta(seconds=settle_s)
        order = Order(
            id=uuid.uuid4(),
            status="pending",
            items=[item.model_dump() for item in data.items],
            total_cents=data.total_cents,
            email=data.email,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_at=now,
            updated_at=now,
        )
        self.session.add(order)
        self.session.add(
            CheckoutJob(
                order_id=order.id,
                kind="resolve",
                due_at=settles_at,
                settles_at=settles_at,
                traceparent=_traceparent(),
            )
        )
        try:
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()
            return None
        return order

    async def get(self, order_id: uuid.UUID, fresh: bool = False) -> Order | None:
        """The order; ``fresh``: read again, not the copy this session holds."""
        return await self.session.get(Order, order_id, populate_existing=fresh)

    async def get_by_key(self, idempotency_key: str) -> Order | None:
        orders = await self.session.scalars(
            select(Order).where(Order.idempotency_key == idempotency_key)
        )
        return orders.first()

    async def confirm(self, order: Order) -> dict[str, Any] | None:
        """Confirm a pending ``order`` and queue its ``OrderPlaced``, in one transaction;
        its answer, or None when the order was no longer pending (the recovery ended it)."""
        now = _now()
        body = OrderRead.model_validate(order).model_dump(mode="json") | {"status": "confirmed"}
        event = OrderPlaced(
            event_id=uuid.uuid4(),
            order_id=order.id,
            occurred_at=now,
            total_cents=order.total_cents,
            email=order.email,
        )
        done = await self._finish(order, "confirmed", None, 201, body, event, None)
        return body if done else None

    async def fail(
        self,
        order: Order,
        reason: str,
        error: ServiceError,
        settles_at: datetime,
        due_now: bool = False,
    ) -> bool:
        """Fail a pending ``order`` and queue its ``OrderFailed`` and the job that gives
        back its stock and money, in one transaction; False when the order was no longer
        pending. The job is done after ``settles_at``; it first runs then, or now with
        ``due_now`` (the checkout gives back at once itself, then leaves it to the job).

        ``error`` is what the client is answered; it is kept for replays.
        """
        now = _now()
        event = OrderFailed(
            event_id=uuid.uuid4(),
            order_id=order.id,
            occurred_at=now,
            total_cents=order.total_cents,
            email=order.email,
            reason=reason,
        )
        body, answer = error_body(error), error.status_code
        compensation = (now if due_now else settles_at, settles_at)
        return await self._finish(order, "failed", reason, answer, body, event, compensation)

    async def _finish(
        self,
        order: Order,
        status: str,
        reason: str | None,
        answer_status: int,
        body: dict[str, Any],
        event: OrderPlaced | OrderFailed,
        compensation: tuple[datetime, datetime] | None,
    ) -> bool:
        # Whatever was done downstream (stock reserved, a card charged, or undone), the
        # outcome is recorded even when our caller has given up: else the order would
        # stay pending until the recovery ends it, and a retry be told "in progress".
        with without_deadline():
            now = _now()
            # Only over a pending order: whoever comes second (the checkout or the recovery)
            # changes nothing and reads what the first stored.
            finished = cast(
                "CursorResult[Any]",
                await self.session.execute(
                    update(Order)
                    .where(Order.id == order.id, Order.status == "pending")
                    .values(
                        status=status,
                        failure_reason=reason,
                        response_status=answer_status,
                        response_body=body,
                        updated_at=now,
                    )
                ),
            )
            if finished.rowcount != 1:
                await self.session.rollback()
                return False
            self.session.add(outbox_message(event))
            await self.session.execute(delete(CheckoutJob).where(CheckoutJob.order_id == order.id))
            if compensation is not None:
                due_at, settles_at = compensation
                self.session.add(
                    CheckoutJob(
                        order_id=order.id,
                        kind="compensate",
                        due_at=due_at,
                        settles_at=settles_at,
                        traceparent=_traceparent(),
                    )
                )
            await self.session.commit()
            return True

    # -- what the checkout still owes (orders.recovery) ------------------------------

    async def claim_jobs(self, limit: int, lease_s: float) -> list[CheckoutJob]:
        """Up to ``limit`` jobs that are due, each leased for ``lease_s`` (no other
        replica takes it meanwhile; one whose runner died is due again after it)."""
        now = _now()
        jobs = list(
            await self.session.scalars(
                select(CheckoutJob)
                .where(CheckoutJob.due_at <= now)
                .order_by(CheckoutJob.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for job in jobs:
            job.due_at = now + timedelta(seconds=lease_s)
            job.attempts += 1
        await self.session.commit()
        return jobs

    async def retry_job(
        self, order_id: uuid.UUID, kind: str, due_at: datetime, error: str | None
    ) -> None:
        """Run the order's ``kind`` job again at ``due_at`` (a resolve that failed the order
        has been replaced by its compensate job, which this leaves alone)."""
        await self.session.execute(
            update(CheckoutJob)
            .where(CheckoutJob.order_id == order_id, CheckoutJob.kind == kind)
            .values(due_at=due_at, last_error=error)
        )
        await self.session.commit()

    async def finish_job(self, order_id: uuid.UUID, kind: str) -> None:
        await self.session.execute(
            delete(CheckoutJob).where(CheckoutJob.order_id == order_id, CheckoutJob.kind == kind)
        )
        await self.session.commit()

    async def open_jobs(self) -> dict[str, tuple[int, datetime | None]]:
        """By kind: how many jobs are open, and since when the oldest."""
        rows = await self.session.execute(
            select(CheckoutJob.kind, func.count(), func.min(CheckoutJob.created_at)).group_by(
                CheckoutJob.kind
            )
        )
        return {kind: (count, oldest) for kind, count, oldest in rows.tuples()}

    async def mark_notified(self, order_id: uuid.UUID) -> Order | None:
        """Record that the customer was notified (the first time only); None if unknown."""
        await self.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.notified_at.is_(None))
            .values(notified_at=_now())
        )
        await self.session.commit()
        return await self.get(order_id)
