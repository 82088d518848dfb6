"""The payment card as it crosses the shop: gateway → orders → payments.

One model, so the three services refuse the same cards with the same messages.
The number and the CVC are ``SecretStr``: printed, logged or dumped by mistake they
show as ``**********``; :meth:`PaymentCard.reveal` is the one way to send them on.
Validation messages never quote the number (an error body would carry it back),
and nothing but the brand and the last four digits is ever stored. The Luhn check
is the kit's: the kit's log redaction finds card numbers with it too, in any service.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from obskit import luhn_valid

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


class PaymentCard(BaseModel):
    """A card as a client sends it; spaces and dashes in the number are allowed."""

    model_config = ConfigDict(extra="forbid")

    number: SecretStr = Field(
        min_length=12, max_length=23, description="12 to 19 digits; spaces or dashes allowed"
    )
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

    @property
    def brand(self) -> CardBrand:
        return card_brand(self.number.get_secret_value())

    @property
    def last4(self) -> str:
        return self.number.get_secret_value()[-4:]

    def reveal(self) -> dict[str, str]:
        """The card in clear, for the body of the call that hands it to the next service."""
        return {
            "number": self.number.get_secret_value(),
            "expiry": self.expiry,
            "cvc": self.cvc.get_secret_value(),
        }
