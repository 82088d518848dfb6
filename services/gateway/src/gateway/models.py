"""The gateway's API models: what the public sends, and what it gets back.

The gateway defines its own models rather than importing catalog's or orders'
(services never import each other): these are the public contract, checked at
the boundary in both directions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts import PaymentCard

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
    #: Set only when catalog was down and this is the last copy it gave: "catalog-stale".
    degraded: str | None = None


class ProductPage(BaseModel):
    items: list[ProductRead]
    limit: int
    offset: int
    #: Set only when catalog was down and the page is the last one it gave: "catalog-stale".
    degraded: str | None = None


# An order, as the public places it.


class OrderRequestItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Quantity


class OrderRequest(BaseModel):
    """The public's order: products and quantities only; prices come from catalog."""

    model_config = ConfigDict(extra="forbid")

    items: list[OrderRequestItem] = Field(min_length=1, max_length=20)
    card: PaymentCard
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
    card: PaymentCard
    email: str | None = None


class OrderRead(BaseModel):
    id: uuid.UUID
    status: Literal["pending", "confirmed", "failed"]
    failure_reason: str | None
    items: list[OrderLine]
    total_cents: int
    created_at: datetime
    notified_at: datetime | None
