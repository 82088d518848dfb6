"""The orders API models: what an order looks like on the wire."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from obskit import luhn_valid

#: Ids are PostgreSQL ``integer``s: a larger number is refused as invalid, not a 500.
ProductId = Annotated[int, Field(ge=1, le=2_147_483_647)]
#: The most payments charges at once, so the most an order may cost.
MAX_TOTAL_CENTS = 10_000_000

OrderStatus = Literal["pending", "confirmed", "failed"]


class CardIn(BaseModel):
    """A card as the client sends it (the rules are payments'); orders never stores it.

    ``SecretStr`` keeps the number and CVC out of reprs, logs and f-strings, and the
    validation messages never quote them.
    """

    model_config = ConfigDict(extra="forbid")

    number: SecretStr = Field(min_length=12, max_length=23, description="spaces or dashes allowed")
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])/[0-9]{2}$", examples=["12/30"])
    cvc: SecretStr = Field(min_length=3, max_length=4)

    @field_validator("number")
    @classmethod
    def _normalise_number(cls, number: SecretStr) -> SecretStr:
        digits = re.sub(r"[ -]", "", number.get_secret_value())
        if not re.fullmatch(r"[0-9]{12,19}", digits):
            raise ValueError("a card number is 12 to 19 digits")
        if not luhn_valid(digits):
            raise ValueError("the card number is not valid (its check digit is wrong)")
        return SecretStr(digits)

    @field_validator("expiry")
    @classmethod
    def _not_expired(cls, expiry: str) -> str:
        month, year = int(expiry[:2]), 2000 + int(expiry[3:])
        today = datetime.now(UTC)
        # A card is valid until the end of its expiry month.
        if (year, month) < (today.year, today.month):
            raise ValueError("the card has expired")
        return expiry

    @field_validator("cvc")
    @classmethod
    def _cvc_digits(cls, cvc: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[0-9]{3,4}", cvc.get_secret_value()):
            raise ValueError("a CVC is 3 or 4 digits")
        return cvc

    def to_payments(self) -> dict[str, str]:
        """The card as payments' ``POST /charges`` takes it, secrets revealed."""
        return {
            "number": self.number.get_secret_value(),
            "expiry": self.expiry,
            "cvc": self.cvc.get_secret_value(),
        }


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: int = Field(ge=1, le=100)
    unit_price_cents: int = Field(ge=0, le=10_000_000)


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OrderItem] = Field(min_length=1, max_length=20)
    card: CardIn
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
