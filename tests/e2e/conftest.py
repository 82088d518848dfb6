"""The whole shop as processes, with an OTLP receiver capturing what it exports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import Backends
from tests.support.otlp import OTLPReceiver
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def otlp() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def shop(
    backends: Backends, otlp: OTLPReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """All six services running against the session's backends, ready."""
    amqp_url = backends.new_vhost()
    stack = Stack(
        postgres_url=backends.postgres_url,
        redis_url=f"{backends.redis_url}/14",
        amqp_url=amqp_url,
        otlp_endpoint=otlp.endpoint,
        log_dir=Path(tmp_path_factory.mktemp("shop-logs")),
    )
    try:
        stack.start_all()
        yield stack
    finally:
        stack.close()
        backends.drop_vhost(amqp_url)
