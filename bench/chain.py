"""The checkout chain as processes, and what each process costs, read from ``/proc``.

The services start the way the native lab starts them (:mod:`obslab.native.servers`),
one after the other in dependency order, each on a free port with PostgreSQL
databases of this run's own, which are dropped when the chain stops.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from obslab.native import servers
from obslab.native.process import free_port, start, stop_groups
from obslab.topology import CALLS

#: Each service starts after the ones it calls (notifications reads orders).
ORDER = ["catalog", "inventory", "payments", "orders", "notifications", "gateway"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far."""
    # Fields after the command's closing parenthesis start at field 3 (state);
    # utime and stime are fields 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mib(pid: int) -> float:
    """The process's resident memory now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Chain:
    """Six service processes sharing one environment (telemetry on or off)."""

    def __init__(self, env: dict[str, str], postgres_url: str, log_dir: Path) -> None:
        self.env = env
        self.postgres_url = postgres_url
        self.log_dir = log_dir
        self.run_id = uuid.uuid4().hex[:8]
        # Distinct ports: the kernel may hand a just-freed port out twice, and the
        # gateway's URL would then reach whichever service bound it first.
        ports: set[int] = set()
        while len(ports) < len(ORDER):
            ports.add(free_port())
        self.urls = {
            service: f"http://127.0.0.1:{port}"
            for service, port in zip(ORDER, sorted(ports), strict=True)
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def database(self, service: str) -> str:
        return f"obslab_bench_{self.run_id}_{service}"

    def env_for(self, service: str) -> dict[str, str]:
        # A lab on this machine, as `obslab up` runs it: the gateway accepts its dev
        # credentials (bench/checkout.js signs in with them) instead of refusing to start.
        env = {"OBSLAB_ENVIRONMENT": "dev", **self.env}
        if service != "gateway":  # stateless: it has no database
            env["OBSLAB_DATABASE_URL"] = f"{self.postgres_url}/{self.database(service)}"
        for callee in CALLS.get(service, ()):
            env[f"OBSLAB_{callee.upper()}_URL"] = self.urls[callee]
        return env

    def start(self, timeout: float = 60) -> dict[str, float]:
        """Start every service; return each one's seconds from launch to ready."""
        ready_after: dict[str, float] = {}
        with httpx.Client(timeout=1) as client:
            for service in ORDER:
                port = int(self.urls[service].rsplit(":", 1)[1])
                process = servers.service(service, port, self.env_for(service))
                log = self.log_dir / f"{service}.log"
                launched = time.perf_counter()
                self.processes[service] = popen = start(process, log)
                while not _ready(client, process.health):
                    if popen.poll() is not None:
                        raise RuntimeError(f"{service} exited with {popen.returncode}: see {log}")
                    if time.perf_counter() - launched > timeout:
                        raise TimeoutError(f"{service} not ready after {timeout:.0f}s: see {log}")
                    time.sleep(0.01)
                ready_after[service] = time.perf_counter() - launched
        return ready_after

    def cpu(self) -> dict[str, float]:
        return {service: cpu_seconds(p.pid) for service, p in self.processes.items()}

    def rss(self) -> dict[str, float]:
        return {service: rss_mib(p.pid) for service, p in self.processes.items()}

    def counter(self, service: str, name: str) -> float:
        """The sum of every sample of counter ``name`` on ``service``'s /metrics."""
        text = httpx.get(f"{self.urls[service]}/metrics", timeout=5).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )

    def stop(self) -> None:
        """Stop every service (SIGTERM, then SIGKILL), then drop this run's databases."""
        stop_groups([p.pid for p in self.processes.values()], timeout=30)
        asyncio.run(self._drop_databases())

    async def _drop_databases(self) -> None:
        connection = await asyncpg.connect(f"{self.postgres_url}/postgres")
        try:
            for service in ORDER:
                await connection.execute(
                    f'DROP DATABASE IF EXISTS "{self.database(service)}" WITH (FORCE)'
                )
        finally:
            await connection.close()


def _ready(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False
