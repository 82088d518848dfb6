"""How to run each server the lab needs, from the binaries on PATH.

Each function returns a :class:`~obslab.native.process.Process` with its data under
``data_dir``, listening on 127.0.0.1 only. Where a binary is missing,
:func:`require` says which package brings it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from obslab.native.process import Process

#: binary -> (Debian package, Homebrew formula)
PACKAGES = {
    "postgres": ("postgresql", "postgresql"),
    "redis-server": ("redis-server", "redis"),
    "rabbitmq-server": ("rabbitmq-server", "rabbitmq"),
    "prometheus": ("prometheus", "prometheus"),
    "prometheus-alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "nginx": ("nginx-light", "nginx"),
    "prometheus-nginx-exporter": ("prometheus-nginx-exporter", "nginx-prometheus-exporter"),
    "epmd": ("rabbitmq-server", "rabbitmq"),  # Erlang's, which RabbitMQ brings
}


#: A binary's name outside Debian (Homebrew's, upstream's), where it differs.
OTHER_NAMES = {
    "prometheus-alertmanager": "alertmanager",
    "prometheus-nginx-exporter": "nginx-prometheus-exporter",
}


class MissingBinary(RuntimeError):
    pass


def require(binary: str) -> str:
    """The path of ``binary``, or MissingBinary saying how to install it."""
    found = shutil.which(binary)
    if binary == "postgres" and not found:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        found = str(versions[-1]) if versions else None
    if not found and binary in OTHER_NAMES:
        found = shutil.which(OTHER_NAMES[binary])
    if binary == "epmd" and not found and (erl := shutil.which("erl")):
        beside = Path(erl).resolve().parent / "epmd"  # Erlang's bin, where PATH may not go
        found = str(beside) if beside.exists() else None
    if not found:
        debian, brew = PACKAGES[binary]
        raise MissingBinary(
            f"{binary} is not installed. Debian/Ubuntu: apt-get install --no-install-recommends"
            f" {debian}   macOS: brew install {brew}"
        )
    return found


def _own(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user, user)


def postgres(data_dir: Path, port: int) -> Process:
    postgres_bin = Path(require("postgres")).resolve()  # initdb lies beside the real one

    def prepare() -> None:
        if (data_dir / "PG_VERSION").exists():
            return
        data_dir.mkdir(parents=True, exist_ok=True)
        _own(data_dir, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        initdb = subprocess.run(
            [
                *as_postgres,
                str(postgres_bin.parent / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")

    return Process(
        name="postgres",
        argv=[
            str(postgres_bin),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            # A lab's data may be lost in a power cut; it is not worth an fsync.
            "-c",
            "fsync=off",
            "-c",
            "max_connections=300",
        ],
        health=f"tcp://127.0.0.1:{port}",
        prepare=prepare,
        url=f"postgresql://postgres@127.0.0.1:{port}",
        user="postgres",
    )


def redis(data_dir: Path, port: int) -> Process:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Process(
        name="redis",
        argv=[
            require("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
        health=f"tcp://127.0.0.1:{port}",
        url=f"redis://127.0.0.1:{port}",
    )


def rabbitmq(
    data_dir: Path, port: int, dist_port: int, epmd_port: int, metrics_port: int | None
) -> Process:
    """RabbitMQ, with its Prometheus plugin on ``metrics_port`` when one is given.

    Erlang finds its nodes through epmd, which the first node of a machine starts as a
    daemon that outlives it. So the lab runs its own epmd on ``epmd_port`` in the
    broker's process group, ready before the broker starts: `obslab down` stops it
    with the broker, and a machine's epmd on 4369 is neither used nor left behind.
    """
    require("rabbitmq-server")
    epmd = require("epmd")
    node = f"obslab{port}@localhost"

    def prepare() -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        plugins = "[rabbitmq_prometheus]." if metrics_port else "[]."
        (data_dir / "enabled_plugins").write_text(plugins + "\n")
        config = f"prometheus.tcp.port = {metrics_port}\nprometheus.tcp.ip = 127.0.0.1\n"
        (data_dir / "rabbitmq.conf").write_text(config if metrics_port else "")
        for path in (data_dir, data_dir / "enabled_plugins", data_dir / "rabbitmq.conf"):
            # Debian's rabbitmq-server drops to the rabbitmq user when started as root.
            _own(path, "rabbitmq")

    # Debian's /usr/sbin/rabbitmq-server re-runs this script through `su`, which puts
    # the broker in a session of its own, out of reach of the lab's stop; as root we
    # run the script as the rabbitmq user ourselves.
    script = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    as_root = os.geteuid() == 0 and script.exists()
    # epmd in the foreground (no -daemon), polled until it answers, then the broker.
    start = (
        f'"$1" -port {epmd_port} -address 127.0.0.1 & '
        f'for _ in $(seq 100); do "$1" -port {epmd_port} -names >/dev/null 2>&1 && break; '
        'sleep 0.1; done; exec "$2"'
    )
    return Process(
        name="rabbitmq",
        argv=["sh", "-c", start, "rabbitmq", epmd, str(script) if as_root else "rabbitmq-server"],
        user="rabbitmq" if as_root else None,
        env={
            "ERL_EPMD_PORT": str(epmd_port),
            # Erlang reads its cookie from $HOME: one of the node's own, which the
            # rabbitmq user can write and rabbitmqctl (given this env) can read.
            "HOME": str(data_dir),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(data_dir / "log"),
            "RABBITMQ_PID_FILE": str(data_dir / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(data_dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(data_dir / "rabbitmq"),
            "ERL_CRASH_DUMP": str(data_dir / "erl_crash.dump"),
        },
        # The AMQP port opens last in RabbitMQ's boot, once it can take messages.
        health=f"tcp://127.0.0.1:{port}",
        prepare=prepare,
        url=f"amqp://guest:guest@127.0.0.1:{port}/",
        start_timeout=120,
    )


def prometheus(config: Path, data_dir: Path, port: int) -> Process:
    return Process(
        name="prometheus",
        argv=[
            require("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            # Exemplars link a latency bucket to a trace; Prometheus 2.x keeps them
            # only with this flag.
            "--enable-feature=exemplar-storage",
            "--web.enable-lifecycle",
            # `obslab load --prometheus`: k6 pushes its metrics here by remote write,
            # so the load and the services' answer to it sit in one Prometheus.
            "--web.enable-remote-write-receiver",
        ],
        health=f"http://127.0.0.1:{port}/-/ready",
        url=f"http://127.0.0.1:{port}",
    )


def alertmanager(config: Path, data_dir: Path, port: int) -> Process:
    return Process(
        name="alertmanager",
        argv=[
            require("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            # One alertmanager, no cluster: no gossip port to open.
            "--cluster.listen-address=",
        ],
        health=f"http://127.0.0.1:{port}/-/ready",
        url=f"http://127.0.0.1:{port}",
    )


def nginx(config: Path, prefix: Path, port: int) -> Process:
    prefix.mkdir(parents=True, exist_ok=True)
    return Process(
        name="nginx",
        argv=[require("nginx"), "-p", str(prefix), "-c", str(config), "-g", "daemon off;"],
        health=f"tcp://127.0.0.1:{port}",
        url=f"http://127.0.0.1:{port}",
    )


def service(name: str, port: int, env: dict[str, str], instance: str = "") -> Process:
    """One shop service (``python -m <name>``), ready when its ``/health/ready`` is 200."""
    url = f"http://127.0.0.1:{port}"
    return Process(
        name=instance or name,
        argv=[sys.executable, "-m", name],
        env={**env, "OBSLAB_PORT": str(port)},
        health=f"{url}/health/ready",
        url=f"{url}/docs",
    )


def telemetry(database: Path, port: int) -> Process:
    """The lab's OTLP receiver (``python -m obslab.telemetry``), storing into ``database``."""
    url = f"http://127.0.0.1:{port}"
    return Process(
        name="telemetry",
        argv=[sys.executable, "-m", "obslab.telemetry"],
        env={"OBSLAB_TELEMETRY_PORT": str(port), "OBSLAB_TELEMETRY_DATABASE": str(database)},
        health=f"{url}/health/ready",
        url=url,
    )


def nginx_exporter(stub_status_url: str, port: int) -> Process:
    return Process(
        name="nginx-exporter",
        argv=[
            require("prometheus-nginx-exporter"),
            f"-nginx.scrape-uri={stub_status_url}",
            f"-web.listen-address=127.0.0.1:{port}",
        ],
        # It starts with nginx and exits if its first scrape fails: on a busy machine
        # nginx may not listen yet. Retry for up to 15s (newer exporters ignore these).
        env={"NGINX_RETRIES": "30", "NGINX_RETRY_INTERVAL": "500ms"},
        health=f"http://127.0.0.1:{port}/metrics",
    )


def redis_exporter(redis_url: str, port: int) -> Process | None:
    """The Redis exporter, or None where it is not installed (it is optional)."""
    binary = shutil.which("prometheus-redis-exporter") or shutil.which("redis_exporter")
    if binary is None:
        return None
    return Process(
        name="redis-exporter",
        argv=[binary, f"-redis.addr={redis_url}", f"-web.listen-address=127.0.0.1:{port}"],
        health=f"http://127.0.0.1:{port}/metrics",
    )
