"""The orders API models: what an order looks like on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import PaymentCard

#: Ids are PostgreSQL ``integer``s: a larger number is refused as invalid, not a 500.
ProductId = Annotated[int, Field(ge=1, le=2_147_483_647)]
#: The most payments charges at once, so the most an order may cost.
MAX_TOTAL_CENTS = 10_000_000

OrderStatus = Literal["pending", "confirmed", "failed"]


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: int = Field(ge=1, le=100)
    unit_price_cents: int = Field(ge=0, le=10_000_000)


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OrderItem] = Field(min_length=1, max_length=20)
    card: PaymentCard
    # Checked loosely on purpose (only the mail server can say an address works), but
    # without control characters: PostgreSQL refuses a NUL in text, which would be a 500.
    email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+$"
    )

    @property
    def total_cents(self) -> int:
        return sum(item.quantity * item.unit_price_cents for item in self.items)

    @model_validator(mode="after")
    def _payable(self) -> OrderCreate:
        if self.total_cents > MAX_TOTAL_CENTS:
            raise ValueError(f"the order total exceeds {MAX_TOTAL_CENTS} cents")
        return self


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    status: OrderStatus
    failure_reason: str | None
    items: list[OrderItem]
    total_cents: int
    created_at: datetime
    notified_at: datetime | None
