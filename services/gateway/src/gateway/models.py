"""The gateway's API models: what the public sends, and what it gets back.

The gateway defines its own models rather than importing catalog's or orders'
(services never import each other): these are the public contract, checked at
the boundary in both directions.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from obskit import luhn_valid

#: Ids are PostgreSQL ``integer``s downstream: a larger number is refused here as invalid.
ProductId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Quantity = Annotated[int, Field(ge=1, le=100)]


# Products, as catalog returns them.


class ProductRead(BaseModel):
    id: int
    sku: str
    name: str
    description: str
    price_cents: int
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[ProductRead]
    limit: int
    offset: int


# An order, as the public places it.


def _card_digits(number: str) -> str:
    # The messages never quote the number: they are sent back to the client.
    digits = re.sub(r"[ -]", "", number)
    if not re.fullmatch(r"[0-9]{12,19}", digits):
        raise ValueError("a card number is 12 to 19 digits")
    if not luhn_valid(digits):
        raise ValueError("the card number is not valid (its check digit is wrong)")
    return digits


class Card(BaseModel):
    """A payment card, by payments' rules. ``repr=False`` keeps it out of any repr or log."""

    model_config = ConfigDict(extra="forbid")

    # A mistyped number is refused here, before catalog or orders is called.
    number: Annotated[
        str,
        Field(min_length=12, max_length=23, repr=False, description="spaces or dashes allowed"),
        AfterValidator(_card_digits),
    ]
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])/[0-9]{2}$", repr=False, description="MM/YY")
    cvc: str = Field(pattern=r"^[0-9]{3,4}$", repr=False)


class OrderRequestItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Quantity


class OrderRequest(BaseModel):
    """The public's order: products and quantities only; prices come from catalog."""

    model_config = ConfigDict(extra="forbid")

    items: list[OrderRequestItem] = Field(min_length=1, max_length=20)
    card: Card
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")

    @field_validator("items")
    @classmethod
    def _one_line_per_product(cls, items: list[OrderRequestItem]) -> list[OrderRequestItem]:
        ids = [item.product_id for item in items]
        if len(set(ids)) != len(ids):
            raise ValueError("each product may appear once; raise its quantity instead")
        return items


# An order, as the gateway hands it to orders and as orders returns it.


class OrderLine(BaseModel):
    product_id: int
    quantity: int
    unit_price_cents: int


class OrderCreate(BaseModel):
    """The body of ``POST /orders``: the public's order with catalog's prices filled in."""

    items: list[OrderLine]
    card: Card
    email: str | None = None


class OrderRead(BaseModel):
    id: uuid.UUID
    status: Literal["pending", "confirmed", "failed"]
    failure_reason: str | None
    items: list[OrderLine]
    total_cents: int
    created_at: datetime
    notified_at: datetime | None
