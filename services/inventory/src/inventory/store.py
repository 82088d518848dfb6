"""Stock and reservations in the inventory's own database, changed only atomically.

Overselling is prevented by the database, not by a check in Python: a reservation
takes each unit with one conditional statement,

    UPDATE stock SET available = available - :q WHERE product_id = :p AND available >= :q

which either takes the units or changes no row (and a CHECK keeps ``available``
from ever going below zero). All the lines of a reservation run in one
transaction, so it is all or nothing. Locks are always taken in the same order
(the reservation row, then stock rows by ascending product id), so two
reservations never deadlock. The same works on PostgreSQL, where concurrent
transactions wait on row locks, and on SQLite, which runs one writer at a time.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from prometheus_client import Counter
from sqlalchemy import (
    JSON,
    CheckConstraint,
    CursorResult,
    DateTime,
    Integer,
    MetaData,
    String,
    Update,
    Uuid,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from inventory.models import (
    ReservationItem,
    ReservationRead,
    ReservationStatus,
    ReservedItem,
    StockRead,
)

log = structlog.get_logger("inventory.store")

RESERVATIONS = Counter(
    "obslab_inventory_reservations",
    "Reservation attempts by outcome: reserved, out_of_stock, or released.",
    ["outcome"],
)

#: The catalog's demo products, which the inventory stocks on a fresh start.
DEMO_PRODUCT_IDS = range(1, 13)


async def _update(session: AsyncSession, statement: Update) -> CursorResult[Any]:
    """Run an UPDATE. Its result is a ``CursorResult``, which counts the rows it changed;
    SQLAlchemy types ``execute()`` for any statement, hence the cast."""
    return cast("CursorResult[Any]", await session.execute(statement))


class Base(DeclarativeBase):
    metadata = MetaData()


def _now() -> datetime:
    return datetime.now(UTC)


class Stock(Base):
    __tablename__ = "stock"
    __table_args__ = (CheckConstraint("available >= 0", name="stock_available_not_negative"),)

    product_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    available: Mapped[int] = mapped_column(Integer)


class Reservation(Base):
    __tablename__ = "reservations"

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[ReservationStatus] = mapped_column(String(16))
    #: ``[{"product_id": 1, "quantity": 2}, ...]``, one line per product, by product id.
    items: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def read(self) -> ReservationRead:
        return ReservationRead(
            order_id=self.order_id,
            status=self.status,
            items=[ReservedItem(**item) for item in self.items],
        )


async def seed_stock(session: AsyncSession, units: int) -> None:
    """Stock each demo product with ``units`` when the stock table is empty."""
    if await session.scalar(select(Stock.product_id).limit(1)) is not None:
        return
    session.add_all(Stock(product_id=i, available=units) for i in DEMO_PRODUCT_IDS)
    # Another replica starting at the same moment may seed first; its rows will do.
    with contextlib.suppress(IntegrityError):
        await session.commit()


class OutOfStock(Exception):
    """Some lines could not be reserved; nothing was."""

    def __init__(self, shortages: list[dict[str, int]]) -> None:
        super().__init__("out of stock")
        self.shortages = shortages  # [{"product_id", "requested", "available"}]


class ReservationReleased(Exception):
    """The order's reservation exists but was released; it is not reserved again."""


class InventoryStore:
    """Reads and changes stock levels and reservations."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Stock.

    async def get_stock(self, product_id: int) -> StockRead | None:
        stock = await self.session.get(Stock, product_id)
        return StockRead.model_validate(stock) if stock is not None else None

    async def set_stock(self, product_id: int, available: int) -> StockRead:
        """Set a product's stock, creating the row for a product not stocked yet."""
        if not await self._set_available(product_id, available):
            self.session.add(Stock(product_id=product_id, available=available))
            try:
                await self.session.commit()
            except IntegrityError:  # created meanwhile by another request: set that row
                await self.session.rollback()
                await self._set_available(product_id, available)
        return StockRead(product_id=product_id, available=available)

    async def _set_available(self, product_id: int, available: int) -> bool:
        result = await _update(
            self.session,
            sql_update(Stock).where(Stock.product_id == product_id).values(available=available),
        )
        await self.session.commit()
        return bool(result.rowcount)

    # Reservations.

    async def _get_reservation(self, order_id: uuid.UUID) -> Reservation | None:
        reservations = await self.session.scalars(
            select(Reservation).where(Reservation.order_id == order_id)
        )
        return reservations.first()

    async def get_reservation(self, order_id: uuid.UUID) -> ReservationRead | None:
        """The order's reservation, reserved or released; None when it has none."""
        reservation = await self._get_reservation(order_id)
        return reservation.read() if reservation is not None else None

    async def _existing(self, order_id: uuid.UUID) -> ReservationRead | None:
        reservation = await self._get_reservation(order_id)
        if reservation is None:
            return None
        if reservation.status == "released":
            raise ReservationReleased
        return reservation.read()

    async def reserve(
        self, order_id: uuid.UUID, items: list[ReservationItem]
    ) -> tuple[ReservationRead, bool]:
        """Reserve every line or none; return the reservation and whether it is new.

        The same ``order_id`` again returns the reservation it made (whatever items
        the repeat carries). Raises :class:`OutOfStock` or :class:`ReservationReleased`.
        """
        existing = await self._existing(order_id)
        if existing is not None:
            return existing, False

        wanted: dict[int, int] = {}
        for item in items:
            wanted[item.product_id] = wanted.get(item.product_id, 0) + item.quantity
        lines = [{"product_id": p, "quantity": q} for p, q in sorted(wanted.items())]

        # The reservation row first: it claims the order id, so a concurrent request
        # for the same order waits here and then fails, before touching any stock.
        self.session.add(Reservation(order_id=order_id, status="reserved", items=lines))
        try:
            await self.session.flush()
        except IntegrityError:
            await self.session.rollback()
            existing = await self._existing(order_id)
            if existing is None:  # cannot happen: the row that conflicted is committed
                raise
            return existing, False

        short = []
        for line in lines:
            result = await _update(
                self.session,
                sql_update(Stock)
                .where(Stock.product_id == line["product_id"])
                .where(Stock.available >= line["quantity"])
                .values(available=Stock.available - line["quantity"]),
            )
            if result.rowcount == 0:
                short.append(line)
        if short:
            shortages = await self._shortages(short)
            await self.session.rollback()  # gives back every unit taken above
            RESERVATIONS.labels("out_of_stock").inc()
            log.info("reservation.out_of_stock", order_id=str(order_id), shortages=shortages)
            raise OutOfStock(shortages)

        await self.session.commit()
        RESERVATIONS.labels("reserved").inc()
        log.info("reservation.created", order_id=str(order_id), lines=len(lines))
        reserved = [ReservedItem(**line) for line in lines]
        return ReservationRead(order_id=order_id, status="reserved", items=reserved), True

    async def _shortages(self, short: list[dict[str, int]]) -> list[dict[str, int]]:
        ids = [line["product_id"] for line in short]
        rows = await self.session.execute(
            select(Stock.product_id, Stock.available).where(Stock.product_id.in_(ids))
        )
        available = dict(rows.tuples().all())
        return [
            {
                "product_id": line["product_id"],
                "requested": line["quantity"],
                # A product the inventory has never stocked has none available.
                "available": available.get(line["product_id"], 0),
            }
            for line in short
        ]

    async def release(self, order_id: uuid.UUID) -> ReservationRead | None:
        """Give a reservation's units back; releasing twice gives them back once."""
        reservation = await self._get_reservation(order_id)
        if reservation is None:
            return None
        # Only the request that moves the row from reserved to released returns the
        # units; a concurrent or repeated release changes no row and returns none.
        flipped = await _update(
            self.session,
            sql_update(Reservation)
            .where(Reservation.order_id == order_id, Reservation.status == "reserved")
            .values(status="released", updated_at=_now()),
        )
        if flipped.rowcount == 1:
            for line in reservation.items:  # stored by ascending product id
                await self.session.execute(
                    sql_update(Stock)
                    .where(Stock.product_id == line["product_id"])
                    .values(available=Stock.available + line["quantity"])
                )
            RESERVATIONS.labels("released").inc()
            log.info("reservation.released", order_id=str(order_id), lines=len(reservation.items))
        await self.session.commit()
        return ReservationRead(
            order_id=order_id,
            status="released",
            items=[ReservedItem(**line) for line in reservation.items],
        )
