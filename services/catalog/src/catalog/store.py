"""Products in the catalog's own database, read through a Redis cache (cache-aside).

Reads try Redis first and fill it on a miss, with a TTL. A change deletes the
product's key and bumps a generation number that is part of every page key, so
no stale page or product outlives a change. When Redis is down the catalog still
answers from the database: the cache is an optimisation, never a dependency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import DateTime, Integer, MetaData, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from catalog.models import ProductCreate, ProductRead, ProductUpdate

log = structlog.get_logger("catalog.store")

CACHE_REQUESTS = Counter(
    "obslab_cache_requests_total",
    "Cache lookups by outcome: hit, miss, or error when the cache is unavailable.",
    ["cache", "result"],
)
# Every series at 0 from the start: the first failed lookup of an outage is then an
# increase that rate() and increase() see, not the birth of a series they ignore.
for _cache in ("product", "product_page"):
    for _result in ("hit", "miss", "error"):
        CACHE_REQUESTS.labels(_cache, _result)


class Base(DeclarativeBase):
    metadata = MetaData()


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC)
    )


DEMO_PRODUCTS = [
    ("TEE-OTEL", "OpenTelemetry T-shirt", 2500),
    ("MUG-P99", "p99 latency mug", 1400),
    ("HOOD-SPAN", "Span hoodie", 5500),
    ("STK-TRACE", "Trace id sticker pack", 500),
    ("CAP-SLO", "Error budget cap", 2000),
    ("SOCK-RED", "RED method socks", 1200),
    ("BOOK-SRE", "The SRE workbook (used)", 3900),
    ("PIN-EXEMP", "Exemplar enamel pin", 800),
    ("BAG-QUEUE", "Dead-letter tote bag", 1800),
    ("LAMP-ALRT", "Alert lamp (red)", 4200),
    ("PAD-RUNBK", "Runbook notepad", 700),
    ("KEY-BRKR", "Circuit breaker keyring", 900),
]


async def seed_demo_products(session: AsyncSession) -> None:
    """Fill an empty catalog with the demo products (ids 1..12, which inventory stocks)."""
    if await session.scalar(select(Product.id).limit(1)) is not None:
        return
    session.add_all(
        Product(sku=sku, name=name, description=name, price_cents=price)
        for sku, name, price in DEMO_PRODUCTS
    )
    await session.commit()


class ProductStore:
    """Reads and writes products, keeping the Redis cache coherent."""

    def __init__(self, session: AsyncSession, redis: Redis, ttl_s: int) -> None:
        self.session, self.redis, self.ttl_s = session, redis, ttl_s

    # The cache, where every Redis failure degrades to "miss".

    async def _cache_get(self, cache: str, keys: list[str]) -> list[bytes | None]:
        try:
            # The kit's client does not decode answers (obskit.create_redis): bytes, which
            # redis-py's types cannot tell from str.
            values = cast("list[bytes | None]", await self.redis.mget(keys))
        except RedisError as exc:
            CACHE_REQUESTS.labels(cache, "error").inc(len(keys))
            log.warning("cache.unavailable", cache=cache, error=type(exc).__name__)
            return [None] * len(keys)
        hits = sum(value is not None for value in values)
        CACHE_REQUESTS.labels(cache, "hit").inc(hits)
        CACHE_REQUESTS.labels(cache, "miss").inc(len(keys) - hits)
        return values

    async def _cache_set(self, items: dict[str, str]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=self.ttl_s)
                await pipe.execute()
        except RedisError as exc:
            log.warning("cache.unavailable", cache="write", error=type(exc).__name__)

    async def _invalidate(self, product_id: int) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(f"catalog:product:{product_id}")
                pipe.incr("catalog:generation")
                await pipe.execute()
        except RedisError as exc:
            # The TTL bounds how long a stale entry can live when this fails.
            log.warning(
                "cache.invalidation_failed", product_id=product_id, error=type(exc).__name__
            )

    # Reads.

    async def get_many(self, ids: list[int]) -> dict[int, ProductRead]:
        """Return the products with these ids that exist, from the cache where possible."""
        unique = list(dict.fromkeys(ids))
        cached = await self._cache_get("product", [f"catalog:product:{i}" for i in unique])
        found = {
            product_id: ProductRead.model_validate_json(raw)
            for product_id, raw in zip(unique, cached, strict=True)
            if raw is not None
        }
        missing = [i for i in unique if i not in found]
        if missing:
            rows = await self.session.scalars(select(Product).where(Product.id.in_(missing)))
            loaded = {row.id: ProductRead.model_validate(row) for row in rows}
            await self._cache_set(
                {f"catalog:product:{i}": p.model_dump_json() for i, p in loaded.items()}
            )
            found.update(loaded)
        return found

    async def page(self, limit: int, offset: int) -> list[ProductRead]:
        try:
            generation = int(await self.redis.get("catalog:generation") or 0)
        except RedisError:
            generation = -1  # no cache to read from or fill
        key = f"catalog:page:{generation}:{limit}:{offset}"
        if generation >= 0:
            (raw,) = await self._cache_get("product_page", [key])
            if raw is not None:
                return [ProductRead.model_validate_json(item) for item in _split(raw)]
        rows = await self.session.scalars(
            select(Product).order_by(Product.id).limit(limit).offset(offset)
        )
        products = [ProductRead.model_validate(row) for row in rows]
        if generation >= 0:
            await self._cache_set({key: "\n".join(p.model_dump_json() for p in products)})
        return products

    # Writes.

    async def create(self, data: ProductCreate) -> ProductRead | None:
        """Create a product; None when the SKU is taken."""
        product = Product(**data.model_dump())
        self.session.add(product)
        try:
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()
            return None
        await self._invalidate(product.id)
        return ProductRead.model_validate(product)

    async def update(self, product_id: int, data: ProductUpdate) -> ProductRead | None:
        product = await self.session.get(Product, product_id)
        if product is None:
            return None
        for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
            setattr(product, field, value)
        product.updated_at = datetime.now(UTC)
        await self.session.commit()
        await self._invalidate(product_id)
        return ProductRead.model_validate(product)


def _split(raw: bytes) -> list[bytes]:
    return raw.split(b"\n") if raw else []
