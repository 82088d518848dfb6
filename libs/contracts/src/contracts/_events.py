"""The events on the broker: the contract between ``orders`` and ``notifications``.

Orders publishes them to the kit's topic exchange (:data:`obskit.EXCHANGE`, which
:func:`obskit.declare_exchanges` declares with its dead-letter exchange) with the
event type as routing key; every event has a unique ``event_id`` so consumers can
be idempotent (a message may be delivered more than once, never lost).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field


class OrderEvent(BaseModel):
    event_id: uuid.UUID
    order_id: uuid.UUID
    occurred_at: datetime
    total_cents: int = Field(ge=0)
    email: str | None = None


class OrderPlaced(OrderEvent):
    type: Literal["order.placed"] = "order.placed"


class OrderFailed(OrderEvent):
    type: Literal["order.failed"] = "order.failed"
    reason: str


AnyOrderEvent = Annotated[OrderPlaced | OrderFailed, Field(discriminator="type")]
