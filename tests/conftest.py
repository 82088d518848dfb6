"""Fixtures every test may use: the real backends, a fresh database per test, and one
shared native lab for the end-to-end tests that leave it as they found it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from redis.asyncio import Redis

import obskit
from tests.support.backends import Backends
from tests.support.lab import Lab, running_lab

# Services default to production, where a secret left at its dev default refuses to
# start. Tests (and the services they start as processes, which inherit this) are not.
os.environ.setdefault("OBSLAB_ENVIRONMENT", "test")


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """The kit's retries never wait in tests (their attempts and budget still apply)."""
    obskit.set_retry_testing(True)
    yield
    obskit.set_retry_testing(False)


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    """PostgreSQL, Redis and RabbitMQ: the machine's if running, private ones if not."""
    started = Backends()
    yield started
    started.close()


@pytest.fixture
async def database_url(backends: Backends) -> AsyncIterator[str]:
    """A PostgreSQL database of its own for one test, dropped afterwards."""
    name = f"obslab_test_{uuid.uuid4().hex[:12]}"
    yield f"{backends.postgres_url}/{name}"
    connection = await asyncpg.connect(f"{backends.postgres_url}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
async def redis_url(backends: Backends) -> AsyncIterator[str]:
    """A Redis database emptied before the test (database 15, kept apart from the lab's 0)."""
    url = f"{backends.redis_url}/15"
    client = Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url


@pytest.fixture
def amqp_url(backends: Backends) -> Iterator[str]:
    """An AMQP URL to a virtual host of this test's own, deleted afterwards."""
    url = backends.new_vhost()
    yield url
    backends.drop_vhost(url)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The native lab as ``make up`` starts it (its own OTLP receiver and store), shared
    by every test that leaves it as it found it: faults cleared, no process killed."""
    with running_lab() as started:
        yield started
