"""The catalog's HTTP API: read-heavy product listing and lookup, and product edits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from catalog.models import ProductCreate, ProductId, ProductPage, ProductRead, ProductUpdate
from catalog.store import ProductStore
from obskit import Conflict, ErrorBody, NotFound

router = APIRouter(tags=["products"], responses={422: {"model": ErrorBody}})


async def get_store(request: Request) -> AsyncIterator[ProductStore]:
    state = request.app.state
    async with state.sessions() as session:
        yield ProductStore(session, state.redis, state.settings.cache_ttl_s)


StoreDep = Annotated[ProductStore, Depends(get_store)]


@router.get("/products", response_model=ProductPage)
async def list_products(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ids: Annotated[list[ProductId] | None, Query(alias="id", max_length=50)] = None,
) -> ProductPage:
    """List products, or look several up at once with ``?id=1&id=2`` (unknown ids are left out)."""
    if ids:
        found = await store.get_many(ids)
        items = [found[i] for i in dict.fromkeys(ids) if i in found]
        return ProductPage(items=items, limit=len(items), offset=0)
    return ProductPage(items=await store.page(limit, offset), limit=limit, offset=offset)


@router.get(
    "/products/{product_id}", response_model=ProductRead, responses={404: {"model": ErrorBody}}
)
async def read_product(
    store: StoreDep, product_id: Annotated[int, Path(ge=1, le=2_147_483_647)]
) -> ProductRead:
    found = await store.get_many([product_id])
    if product_id not in found:
        raise NotFound(f"Product {product_id} does not exist.", code="product_not_found")
    return found[product_id]


@router.post(
    "/products",
    response_model=ProductRead,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorBody}},
)
async def create_product(store: StoreDep, data: ProductCreate) -> ProductRead:
    product = await store.create(data)
    if product is None:
        raise Conflict(f"SKU {data.sku} is taken.", code="sku_taken")
    return product


@router.patch(
    "/products/{product_id}", response_model=ProductRead, responses={404: {"model": ErrorBody}}
)
async def update_product(
    store: StoreDep,
    product_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    data: ProductUpdate,
) -> ProductRead:
    product = await store.update(product_id, data)
    if product is None:
        raise NotFound(f"Product {product_id} does not exist.", code="product_not_found")
    return product
