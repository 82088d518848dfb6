"""The database of one service: PostgreSQL when a URL is given, SQLite otherwise.

Each service owns its database (``obslab_orders``, ``obslab_inventory``, …): no
service reads another's tables, they call its API. :func:`create_engine` creates
the database if it is missing, sizes the pool from settings, traces every query
and exports the pool's use as ``obslab_pool_connections{pool="db"}``; a hook before
each query applies the service's database faults (see ``_chaos``) and the
request's deadline (``_deadline.py``): once the caller's budget is spent no query
starts (504 ``deadline_exceeded``), and an injected slowness waits at most what is
left of it. (A real query already sent runs to its end on the server: PostgreSQL's
``statement_timeout`` would bound it, at the price of a ``SET`` per transaction,
which this shop does not pay.) Work that must be recorded whatever the caller does
(the outcome of an order, a charge the bank made) runs under
:func:`obskit.without_deadline`. Tables are
created at startup by :func:`open_database` (``metadata.create_all``), which is
enough while every schema change is additive; the documented command to do it
without starting the service is ``python -m <service> migrate``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import asyncpg
import sqlalchemy.ext.asyncio
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from sqlalchemy import MetaData, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_only

from obskit import _chaos, _deadline, _telemetry
from obskit._errors import DeadlineExceeded
from obskit._metrics import POOLS
from obskit._settings import DatabaseSettings

_unwatch: dict[int, Callable[[], None]] = {}


def database_url(settings: DatabaseSettings, service: str) -> URL:
    """The SQLAlchemy URL for ``service``, with the async driver filled in."""
    if not settings.database_url:
        path = Path(settings.data_dir) / f"{service}.sqlite3"
        return make_url(f"sqlite+aiosqlite:///{path}")
    url = make_url(settings.database_url)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url


async def ensure_database(url: URL) -> None:
    """Create the service's database (PostgreSQL) or its folder (SQLite) if missing."""
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database="postgres",
    )
    try:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", url.database
        )
        if not exists:
            # Another replica may create it between our check and our CREATE. (A name
            # cannot be a bound parameter; this one comes from settings, not a request.)
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await connection.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await connection.close()


async def create_engine(settings: DatabaseSettings, service: str) -> AsyncEngine:
    """Create (and trace, and watch) the service's engine; dispose it on shutdown."""
    url = database_url(settings, service)
    await ensure_database(url)
    instrumentor = SQLAlchemyInstrumentor()
    if _telemetry.enabled and not instrumentor.is_instrumented_by_opentelemetry:
        # Wraps create_async_engine, so every engine made after this is traced; hence
        # the call below goes through the module, where the wrapper is.
        instrumentor.instrument(enable_commenter=False)
        # It also wraps Engine.connect in a "connect" span: one per pool checkout,
        # several per request, each saying only "a pooled connection was handed
        # out". The query spans tell the story; without these a checkout's trace has
        # a fifth fewer spans to create, export and store.
        unwrap(Engine, "connect")
    create_async_engine = sqlalchemy.ext.asyncio.create_async_engine
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            connect_args={"timeout": 15},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers run beside the one writer SQLite allows.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()
    else:
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_pre_ping=True,
        )
    _watch_faults(engine, service)
    pool = engine.sync_engine.pool
    limit = settings.db_pool_size + settings.db_max_overflow
    unwatch = POOLS.watch(
        "db",
        lambda: (pool.checkedout(), pool.checkedin(), limit),  # type: ignore[attr-defined]
    )
    _unwatch[id(engine)] = unwatch
    return engine


def _watch_faults(engine: AsyncEngine, service: str) -> None:
    """Before each query: refuse it if the request's budget is spent, and apply
    ``service``'s database faults (outage, slowness)."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before_query(*_: object) -> None:
        left = _deadline.remaining()  # the hook runs in the request's context
        if left is not None and left <= 0:
            raise _spent()
        fault = _chaos.dependency_fault(service, "database")
        if fault is not None and fault.kind == "dependency_outage":
            unavailable = ConnectionError("database unavailable (injected by chaos)")
            # What a lost connection raises: the error handlers answer 503.
            raise sa_exc.OperationalError("(chaos)", None, unavailable)
        if fault is not None:
            delay = fault.delay_s()
            # The async engine runs this hook inside its greenlet, where await_only
            # waits without blocking the event loop (time.sleep would block it).
            await_only(asyncio.sleep(delay if left is None else min(delay, left)))
            if left is not None and delay >= left:
                raise _spent()


def _spent() -> DeadlineExceeded:
    return DeadlineExceeded(
        "The request's time budget is spent: the database is not queried.",
        details=[{"downstream": "database"}],
    )


async def dispose_engine(engine: AsyncEngine) -> None:
    _unwatch.pop(id(engine), lambda: None)()
    await engine.dispose()


DatabaseContext = AbstractAsyncContextManager[AsyncEngine]


@asynccontextmanager
async def open_database(
    settings: DatabaseSettings,
    service: str,
    metadata: MetaData,
    seed: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> AsyncIterator[AsyncEngine]:
    """The service's database, ready: created if missing, its tables created (and
    ``seed`` run, which must do nothing when its data is there), the engine disposed
    on exit. A lifespan holds it open; ``python -m <service> migrate`` opens and
    closes it."""
    engine = await create_engine(settings, service)
    try:
        await create_tables(engine, metadata)
        if seed is not None:
            async with sessionmaker(engine)() as session:
                await seed(session)
        yield engine
    finally:
        await dispose_engine(engine)


async def create_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


async def ping_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)
