"""The notifications already sent, in the worker's own database.

The table is what makes the worker idempotent: ``event_id`` is its primary key, so
a row is the proof that an event's notification went out, and a second delivery of
the same event cannot insert (and so cannot send) again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, String, Uuid, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from notifications.models import NotificationRead


class Base(DeclarativeBase):
    metadata = MetaData()


class Notification(Base):
    __tablename__ = "notifications"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    sent_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC)
    )


class NotificationStore:
    """Records and lists notifications; the caller owns the session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, notification: Notification) -> bool:
        """Insert ``notification`` uncommitted; False when its event was already sent.

        While the row is uncommitted, another delivery of the same event waits on
        PostgreSQL's unique index at its own insert, then fails it if we commit or
        gets the row if we roll back: two copies can never both send.
        """
        self.session.add(notification)
        try:
            await self.session.flush()
        except IntegrityError:
            await self.session.rollback()
            return False
        return True

    async def for_order(self, order_id: uuid.UUID) -> list[NotificationRead]:
        rows = await self.session.scalars(
            select(Notification)
            .where(Notification.order_id == order_id)
            .order_by(Notification.sent_at)
        )
        return [NotificationRead.model_validate(row) for row in rows]
