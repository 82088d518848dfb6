"""The public API: products from catalog, orders placed through orders.

The gateway is a backend-for-frontend. It checks what the public sends, asks
catalog for the prices (a client never sets its own) and hands the order to
orders. The answers a client should see (a missing product, a declined card, no
stock) pass through with their status and JSON body, once checked against the
models this API documents; a failing dependency becomes the 502/503/504 that
the :class:`obskit.ServiceClient` raises. Product reads are the exception: while
catalog is down they are answered from the last good copy, marked degraded (see
:mod:`gateway.fallback`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Annotated, TypeVar

import httpx
import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from gateway.auth import AUTH_RESPONSES, Principal, requires
from gateway.fallback import CATALOG_STALE, LastKnownGood
from gateway.models import OrderCreate, OrderLine, OrderRead, OrderRequest, ProductPage, ProductRead
from obskit import (
    DEGRADED_HEADER,
    FALLBACKS,
    DownstreamError,
    ErrorBody,
    ServiceClient,
    ServiceError,
    fallback_served,
)

log = structlog.get_logger("gateway.api")

ORDERS = Counter(
    "obslab_gateway_orders",
    "Valid orders the gateway tried to place, by outcome: created, rejected (unknown "
    "product, declined card, no stock: a 4xx) or failed (a dependency failed: a 5xx).",
    ["outcome"],
)
for _outcome in ("created", "rejected", "failed"):
    ORDERS.labels(outcome=_outcome)  # export 0 from the start, so rate() has a series to use
#: Headers of a downstream answer that mean something to the client too.
PASSED_HEADERS = ("retry-after", "idempotent-replayed")

M = TypeVar("M", bound=BaseModel)

_ERROR: dict[str, object] = {"model": ErrorBody}
router = APIRouter(
    prefix="/api",
    tags=["shop"],
    responses={422: _ERROR, 502: _ERROR, 503: _ERROR, 504: _ERROR},
)


class UnknownProduct(ServiceError):
    status_code, code = 422, "unknown_product"


# ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in
# a worker thread, a thread hop on every request just to read app.state.
async def get_catalog(request: Request) -> ServiceClient:
    catalog: ServiceClient = request.app.state.catalog
    return catalog


async def get_orders(request: Request) -> ServiceClient:
    orders: ServiceClient = request.app.state.orders
    return orders


async def get_stale_products(request: Request) -> LastKnownGood:
    stale: LastKnownGood = request.app.state.stale_products
    return stale


CatalogDep = Annotated[ServiceClient, Depends(get_catalog)]
StaleProductsDep = Annotated[LastKnownGood, Depends(get_stale_products)]
OrdersDep = Annotated[ServiceClient, Depends(get_orders)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$"),
]


def _checked(response: httpx.Response, peer: str, models: Mapping[int, type[M]]) -> M:
    """Parse a downstream answer with the model of its status.

    A status the gateway does not expect, or a body it cannot read, is that
    service's fault: a 502, never a 500 and never an undocumented answer.
    """
    model = models.get(response.status_code)
    if model is None:
        raise DownstreamError(
            f"{peer} answered {response.status_code}, which the gateway does not expect.",
            details=[{"peer_service": peer, "status": response.status_code}],
        )
    try:
        # Strict, because _pass_on forwards these very bytes: they must already be
        # what the documented schema says ("5" is not an integer).
        return model.model_validate_json(response.content, strict=True)
    except ValidationError as exc:
        raise DownstreamError(
            f"{peer} sent a body the gateway cannot read.",
            details=[{"peer_service": peer, "status": response.status_code}],
        ) from exc


def _pass_on(
    response: httpx.Response, peer: str, models: Mapping[int, type[BaseModel]]
) -> Response:
    """Answer with the downstream status and body as they are, once checked against ``models``."""
    _checked(response, peer, models)
    headers = {name: response.headers[name] for name in PASSED_HEADERS if name in response.headers}
    return Response(
        response.content, response.status_code, headers=headers, media_type="application/json"
    )


for _call_site in ("gateway.list_products", "gateway.read_product"):
    FALLBACKS.labels(_call_site)  # at 0 from the start, so rate() has a series to use


def _stale(body: bytes, call_site: str, error: DownstreamError) -> Response:
    """Answer with a copy kept from catalog, saying so in the header, and count it."""
    fallback_served(call_site, CATALOG_STALE, error)
    return Response(body, headers={DEGRADED_HEADER: CATALOG_STALE}, media_type="application/json")


_DEGRADED_DOC = f"``{DEGRADED_HEADER}: {CATALOG_STALE}`` when served from the last good copy."


@router.get(
    "/products", response_model=ProductPage, responses={200: {"description": _DEGRADED_DOC}}
)
async def list_products(
    catalog: CatalogDep,
    stale: StaleProductsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    key = f"/products?limit={limit}&offset={offset}"
    try:
        response = await catalog.request(
            "GET", "/products", params={"limit": limit, "offset": offset}
        )
    except DownstreamError as exc:
        kept = stale.recall(key)
        if kept is None:
            raise
        page = {**json.loads(kept), "degraded": CATALOG_STALE}
        return _stale(json.dumps(page).encode(), "gateway.list_products", exc)
    answer = _pass_on(response, "catalog", {200: ProductPage})
    stale.remember(key, response.content)
    # Each product of the page too: a shopper who browsed can still open one.
    for product in json.loads(response.content)["items"]:
        stale.remember(f"/products/{product['id']}", json.dumps(product).encode())
    return answer


@router.get(
    "/products/{product_id}",
    response_model=ProductRead,
    responses={200: {"description": _DEGRADED_DOC}, 404: _ERROR},
)
async def read_product(
    catalog: CatalogDep,
    stale: StaleProductsDep,
    product_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
) -> Response:
    key = f"/products/{product_id}"
    try:
        response = await catalog.request("GET", key)
    except DownstreamError as exc:
        kept = stale.recall(key)
        if kept is None:
            raise
        product = {**json.loads(kept), "degraded": CATALOG_STALE}
        return _stale(json.dumps(product).encode(), "gateway.read_product", exc)
    answer = _pass_on(response, "catalog", {200: ProductRead, 404: ErrorBody})
    if response.status_code == 200:
        stale.remember(key, response.content)
    else:
        stale.forget(key)
    return answer


@router.post(
    "/orders",
    response_model=OrderRead,
    status_code=status.HTTP_201_CREATED,
    # 400: a body that is not even text; 413 and 415: refused by the kit's middleware.
    responses={400: _ERROR, 402: _ERROR, 409: _ERROR, 413: _ERROR, 415: _ERROR, **AUTH_RESPONSES},
)
async def create_order(
    _: Annotated[Principal, requires("orders:write")],
    catalog: CatalogDep,
    orders: OrdersDep,
    order: OrderRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Place an order at catalog's prices; orders reserves the stock and charges the card.

    Without an ``Idempotency-Key`` the gateway makes one up, so that its own call
    to orders is still safe to retry; a client that may retry should send its own.
    """
    try:
        answer = await _place_order(catalog, orders, order, idempotency_key or str(uuid.uuid4()))
    except ServiceError as exc:  # unknown_product, or a dependency failed
        _count(exc.status_code)
        raise
    _count(answer.status_code)
    return answer


async def _place_order(
    catalog: ServiceClient, orders: ServiceClient, order: OrderRequest, idempotency_key: str
) -> Response:
    ids = [item.product_id for item in order.items]
    # One call for all the products, not one per line. Never from the stale copy: a
    # fallback may show an old price, but an order is only ever charged today's.
    found = await catalog.request("GET", "/products", params=[("id", i) for i in ids])
    page = _checked(found, "catalog", {200: ProductPage})
    prices = {p.id: p.price_cents for p in page.items}
    unknown = [i for i in ids if i not in prices]
    if unknown:
        raise UnknownProduct(
            "Some products do not exist.", details=[{"product_id": i} for i in unknown]
        )
    lines = [
        OrderLine(
            product_id=item.product_id,
            quantity=item.quantity,
            unit_price_cents=prices[item.product_id],
        )
        for item in order.items
    ]
    body = OrderCreate(items=lines, card=order.card, email=order.email).model_dump(
        mode="json", exclude_none=True
    )
    body["card"] = order.card.reveal()  # dumped, the card's secrets are masked
    response = await orders.request(
        "POST",
        "/orders",
        json=body,
        headers={"Idempotency-Key": idempotency_key},
    )
    return _pass_on(
        response, "orders", {201: OrderRead, 402: ErrorBody, 409: ErrorBody, 422: ErrorBody}
    )


def _count(status_code: int) -> None:
    outcome = "created" if status_code < 400 else "rejected" if status_code < 500 else "failed"
    ORDERS.labels(outcome=outcome).inc()
    # Never the order itself, which holds the card: only how it ended.
    log.info("order.answered", outcome=outcome, http_response_status_code=status_code)


@router.get(
    "/orders/{order_id}", response_model=OrderRead, responses={404: _ERROR, **AUTH_RESPONSES}
)
async def read_order(
    _: Annotated[Principal, requires("orders:read")], orders: OrdersDep, order_id: uuid.UUID
) -> Response:
    response = await orders.request("GET", f"/orders/{order_id}")
    return _pass_on(response, "orders", {200: OrderRead, 404: ErrorBody})
