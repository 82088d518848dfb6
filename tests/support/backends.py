"""The real backends the tests use: PostgreSQL, Redis and RabbitMQ.

A backend already listening where the machine runs it (or where
``OBSLAB_TEST_POSTGRES_URL`` / ``OBSLAB_TEST_REDIS_URL`` / ``OBSLAB_TEST_AMQP_URL``
point) is used as it is; a missing one is started privately, the way the native lab
starts it (:mod:`obslab.native.servers`), on a free port with its data in a temporary
folder, and stopped at the end. Tests that must stop a broker (outage tests)
always start a private RabbitMQ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from obslab.native import servers
from obslab.native.process import (
    Process,
    free_port,
    port_open,
    start_and_wait,
    stop_group,
    wait_for,
)

__all__ = ["Backends", "PrivateServer", "free_port", "port_open", "private_rabbit", "wait_for"]

DEFAULTS = {
    "postgres": "postgresql://postgres@127.0.0.1:5432",
    "redis": "redis://127.0.0.1:6379",
    "amqp": "amqp://guest:guest@127.0.0.1:5672/",
}


class PrivateServer:
    """A server of the tests' own, which a test may stop and start again.

    Its data folder outlives a stop, so a restarted PostgreSQL or RabbitMQ keeps its
    databases, durable queues and persistent messages, as a real server would.
    """

    def __init__(self, make: Callable[[Path], Process]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="obslab-test-"))
        self.dir.chmod(0o755)  # PostgreSQL and RabbitMQ run as their own users
        self.process = make(self.dir)
        self.url = self.process.url
        self.pid: int | None = None
        self.start()

    def start(self) -> None:
        self.pid = start_and_wait(self.process, self.dir / "server.log").pid

    def stop(self) -> None:
        if self.pid is not None:
            stop_group(self.pid)
            self.pid = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def private_rabbit() -> PrivateServer:
    return PrivateServer(
        lambda folder: servers.rabbitmq(
            folder / "data", free_port(), free_port(), free_port(), None
        )
    )


STARTERS: dict[str, Callable[[], PrivateServer]] = {
    "postgres": lambda: PrivateServer(lambda f: servers.postgres(f / "data", free_port())),
    "redis": lambda: PrivateServer(lambda f: servers.redis(f / "data", free_port())),
    "amqp": private_rabbit,
}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    return parts.port is not None and port_open(parts.port, parts.hostname or "127.0.0.1")


class Backends:
    """The three backends of a test session, shared or private."""

    def __init__(self) -> None:
        self._private: dict[str, PrivateServer] = {}
        self._spare_vhosts: list[str] = []
        self._used_vhosts: list[str] = []
        self.postgres_url = self._pick("postgres")
        self.redis_url = self._pick("redis")
        self.amqp_url = self._pick("amqp")

    def _pick(self, name: str) -> str:
        url = os.environ.get(f"OBSLAB_TEST_{name.upper()}_URL", DEFAULTS[name])
        if _reachable(url):
            return url
        self._private[name] = STARTERS[name]()
        return self._private[name].url

    def new_vhost(self) -> str:
        """Return the AMQP URL of an empty RabbitMQ virtual host of its own.

        Every test that touches the broker gets its own, so queues and messages
        left by another test can never reach it. rabbitmqctl takes a second or two
        per call, so vhosts are made sixteen at a time in one call, and deleted
        together when the session ends.
        """
        if not self._spare_vhosts:
            names = [f"obslab-test-{uuid.uuid4().hex[:12]}" for _ in range(16)]
            self._for_each_vhost(
                names,
                'rabbit_vhost:add(V, <<"obslab-tests">>), '
                "rabbit_auth_backend_internal:set_permissions("
                '<<"guest">>, V, <<".*">>, <<".*">>, <<".*">>, <<"obslab-tests">>)',
            )
            self._spare_vhosts.extend(names)
        vhost = self._spare_vhosts.pop()
        self._used_vhosts.append(vhost)
        return self.amqp_url.rstrip("/") + "/" + vhost

    def drop_vhost(self, url: str) -> None:
        """Nothing to do now: every vhost handed out is deleted in :meth:`close`."""

    def _for_each_vhost(self, names: list[str], erlang: str) -> None:
        vhosts = ", ".join(f'<<"{name}">>' for name in names)
        self._rabbitmqctl(
            "eval", f"lists:foreach(fun(V) -> catch begin {erlang} end end, [{vhosts}])."
        )

    def _rabbitmqctl(self, *command: str) -> None:
        rabbit = self._private.get("amqp")
        env = {**os.environ, **rabbit.process.env} if rabbit else None
        node = ["-n", rabbit.process.env["RABBITMQ_NODENAME"]] if rabbit else []
        subprocess.run(
            ["rabbitmqctl", *node, *command],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def close(self) -> None:
        names = self._used_vhosts + self._spare_vhosts
        if names and _reachable(self.amqp_url):
            self._for_each_vhost(names, 'rabbit_vhost:delete(V, <<"obslab-tests">>)')
        for server in self._private.values():
            server.destroy()
