"""The payments API models: charges, and the card that pays for one.

The card number and CVC are ``SecretStr``: printed, logged or put in an f-string
by mistake they show as ``**********``. Validation messages never quote them, and
nothing but the brand and the last four digits outlives the request.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from obskit import luhn_valid

AmountCents = Annotated[int, Field(ge=1, le=10_000_000)]
CardBrand = Literal["visa", "mastercard", "amex", "unknown"]


def card_brand(number: str) -> CardBrand:
    """The card network, from the number's first digits (its issuer identification)."""
    if number.startswith("4"):
        return "visa"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number[:2] in ("34", "37"):
        return "amex"
    return "unknown"


class CardIn(BaseModel):
    """A card as a client sends it; spaces and dashes in the number are allowed."""

    model_config = ConfigDict(extra="forbid")

    number: SecretStr = Field(min_length=12, max_length=23)
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])/[0-9]{2}$", examples=["12/30"])
    cvc: SecretStr = Field(min_length=3, max_length=4)

    @field_validator("number")
    @classmethod
    def _normalise_number(cls, number: SecretStr) -> SecretStr:
        # The messages must not quote the number: the error body and logs would carry it.
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

    @property
    def brand(self) -> CardBrand:
        return card_brand(self.number.get_secret_value())

    @property
    def last4(self) -> str:
        return self.number.get_secret_value()[-4:]


class ChargeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: UUID
    amount_cents: AmountCents
    currency: Literal["USD"] = "USD"
    card: CardIn


class ChargeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    charge_id: UUID
    order_id: UUID
    status: Literal["succeeded", "declined", "refunded"]
    amount_cents: int
    currency: str
    card_brand: CardBrand
    card_last4: str
