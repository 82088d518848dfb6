"""The payments API models: charges. The card that pays is ``contracts.PaymentCard``:
its number and CVC never outlive the request; only brand and last four digits do."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts import CardBrand, PaymentCard

AmountCents = Annotated[int, Field(ge=1, le=10_000_000)]


class ChargeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: UUID
    amount_cents: AmountCents
    currency: Literal["USD"] = "USD"
    card: PaymentCard


class ChargeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    charge_id: UUID
    order_id: UUID
    status: Literal["succeeded", "declined", "refunded"]
    amount_cents: int
    currency: str
    card_brand: CardBrand
    card_last4: str
