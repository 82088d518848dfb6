"""The catalog's API models: what a product looks like on the wire."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: Ids are PostgreSQL ``integer``s: a larger number is refused as invalid, not a 500.
ProductId = Annotated[int, Field(ge=1, le=2_147_483_647)]
# The most one order line may cost: payments charges at most 10_000_000 cents.
PriceCents = Annotated[int, Field(ge=0, le=10_000_000)]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    price_cents: PriceCents


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    price_cents: PriceCents | None = None


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
