"""The worker's API models: what a sent notification looks like on the wire.

The events it consumes are not defined here: they are the contract with orders,
:class:`contracts.OrderPlaced` and :class:`contracts.OrderFailed`.
"""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: uuid.UUID
    order_id: uuid.UUID
    event_type: str
    channel: str
    recipient: str
    sent_at: datetime
