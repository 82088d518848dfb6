"""The real backends the tests use: PostgreSQL, Redis and RabbitMQ.

A backend already listening where the machine runs it (or where
``OBSLAB_TEST_POSTGRES_URL`` / ``OBSLAB_TEST_REDIS_URL`` / ``OBSLAB_TEST_AMQP_URL``
point) is used as it is; a missing one is started privately, from the binaries on
PATH, on a free port, with its data in a temporary folder, and stopped at the end.
Tests that must stop a broker (outage tests) always start a private RabbitMQ.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

DEFAULTS = {
    "postgres": "postgresql://postgres@127.0.0.1:5432",
    "redis": "redis://127.0.0.1:6379",
    "amqp": "amqp://guest:guest@127.0.0.1:5672/",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_for(condition, timeout: float, what: str, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    return parts.port is not None and port_open(parts.port, parts.hostname or "127.0.0.1")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster; it runs as the ``postgres`` user (never as root)."""

    def __init__(self) -> None:
        bindir = next(sorted(Path("/usr/lib/postgresql").glob("*/bin")).__reversed__(), None)
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="obslab-pg-"))
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(self.dir / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        self.process = subprocess.Popen(
            [
                *as_postgres,
                str(bindir / "postgres"),
                "-D",
                str(self.dir / "data"),
                "-p",
                str(self.port),
                "-k",
                str(self.dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=300",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port), 60, "private PostgreSQL")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port), 30, "private Redis")
        self.url = f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.process)


class PrivateRabbit:
    """A RabbitMQ node of our own, which a test may stop and start again.

    Its data folder outlives a stop, so durable queues and persistent messages
    survive a restart, as they would on a real broker.
    """

    def __init__(self) -> None:
        self.port, self.dist_port = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="obslab-rabbit-"))
        self.node = f"obslab{self.port}@localhost"
        (self.dir / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            # Debian's rabbitmq-server drops to the rabbitmq user when started as root.
            shutil.chown(self.dir, "rabbitmq", "rabbitmq")
            shutil.chown(self.dir / "enabled_plugins", "rabbitmq", "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "ERL_CRASH_DUMP": str(self.dir / "erl_crash.dump"),
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["rabbitmq-server"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"RabbitMQ exited: see {self.dir / 'log'}")
            return port_open(self.port)

        # The AMQP port opens last in RabbitMQ's boot, once it can take messages.
        wait_for(listening, 120, "private RabbitMQ")

    def stop(self) -> None:
        if self.process is not None:
            subprocess.run(
                ["rabbitmqctl", "-n", self.node, "stop"],
                env=self.env,
                capture_output=True,
                timeout=60,
            )
            _stop(self.process)
            self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Backends:
    """The three backends of a test session, shared or private."""

    def __init__(self) -> None:
        self._private: list[PrivatePostgres | PrivateRedis | PrivateRabbit] = []
        self._spare_vhosts: list[str] = []
        self._used_vhosts: list[str] = []
        self.postgres_url = self._pick("postgres", PrivatePostgres)
        self.redis_url = self._pick("redis", PrivateRedis)
        self.amqp_url = self._pick("amqp", PrivateRabbit)

    def _pick(self, name: str, start) -> str:  # type: ignore[no-untyped-def]
        url = os.environ.get(f"OBSLAB_TEST_{name.upper()}_URL", DEFAULTS[name])
        if _reachable(url):
            return url
        backend = start()
        self._private.append(backend)
        return str(backend.url)

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
        rabbit = next((b for b in self._private if isinstance(b, PrivateRabbit)), None)
        node = ["-n", rabbit.node] if rabbit else []
        subprocess.run(
            ["rabbitmqctl", *node, *command],
            env=rabbit.env if rabbit else None,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def close(self) -> None:
        names = self._used_vhosts + self._spare_vhosts
        if names and _reachable(self.amqp_url):
            self._for_each_vhost(names, 'rabbit_vhost:delete(V, <<"obslab-tests">>)')
        for backend in self._private:
            backend.destroy() if isinstance(backend, PrivateRabbit) else backend.stop()
