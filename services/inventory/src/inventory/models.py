"""The inventory's API models: stock levels and reservations on the wire."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

#: Ids are PostgreSQL ``integer``s: a larger number is refused as invalid, not a 500.
ProductId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Quantity = Annotated[int, Field(ge=1, le=100)]
Units = Annotated[int, Field(ge=0, le=1_000_000_000)]


class StockRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: int
    available: int


class StockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    available: Units


class ReservationItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Quantity


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: UUID
    items: list[ReservationItem] = Field(min_length=1, max_length=50)


class ReservedItem(BaseModel):
    """One line of a stored reservation; lines of the same product are merged into one."""

    product_id: int
    quantity: int


ReservationStatus = Literal["reserved", "released"]


class ReservationRead(BaseModel):
    order_id: UUID
    status: ReservationStatus
    items: list[ReservedItem]
