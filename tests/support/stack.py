"""The whole shop as real processes (``python -m <service>``), for end-to-end tests.

Each service gets a free port, a PostgreSQL database of its own, the shared Redis
and RabbitMQ given to it, and OTLP export to the test's receiver. Its JSON log goes
to a file, which tests read. Services start in dependency order and each must be
ready (``/health/ready``) before the next starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from obslab.topology import CALLS
from tests.support.backends import free_port, wait_for

ORDER = ["catalog", "inventory", "payments", "orders", "notifications", "gateway"]


class Stack:
    def __init__(
        self,
        *,
        postgres_url: str,
        redis_url: str,
        amqp_url: str,
        otlp_endpoint: str,
        log_dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.postgres_url = postgres_url
        self.log_dir = log_dir
        self.ports = {service: free_port() for service in ORDER}
        self.urls = {s: f"http://127.0.0.1:{p}" for s, p in self.ports.items()}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.base_env = {
            **os.environ,
            "OBSLAB_REDIS_URL": redis_url,
            "OBSLAB_AMQP_URL": amqp_url,
            "OBSLAB_LOG_FORMAT": "json",
            "OBSLAB_ENVIRONMENT": "test",
            "OBSLAB_BANK_LATENCY_MS": "5",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            # Export every 100 ms so tests see spans soon after a request.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100",
            **(env or {}),
        }

    def database(self, service: str) -> str:
        return f"obslab_e2e_{self.run_id}_{service}"

    def env_for(self, service: str) -> dict[str, str]:
        env = {
            **self.base_env,
            "OBSLAB_PORT": str(self.ports[service]),
            "OBSLAB_DATABASE_URL": f"{self.postgres_url}/{self.database(service)}",
        }
        for callee in CALLS.get(service, ()):
            env[f"OBSLAB_{callee.upper()}_URL"] = self.urls[callee]
        return env

    def start(self, service: str, timeout: float = 60) -> None:
        log = (self.log_dir / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", service],
            env=self.env_for(service),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: self.ready(service), timeout, f"{service} (log: {log.name})")

    def ready(self, service: str) -> bool:
        process = self.processes[service]
        if process.poll() is not None:
            raise RuntimeError(
                f"{service} exited with {process.returncode}: "
                f"see {self.log_dir / (service + '.log')}"
            )
        try:
            return httpx.get(f"{self.urls[service]}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_all(self) -> None:
        for service in ORDER:
            self.start(service)

    def stop(self, service: str, timeout: float = 30) -> int:
        """Send SIGTERM (a graceful shutdown) and return the exit code."""
        process = self.processes[service]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def logs(self, service: str) -> list[dict[str, Any]]:
        lines = (self.log_dir / f"{service}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def close(self) -> None:
        """Stop every service, then drop the databases this stack created."""
        for service in reversed(ORDER):
            if service in self.processes:
                self.stop(service)
        for service in ORDER:
            subprocess.run(
                [
                    "psql",
                    f"{self.postgres_url}/postgres",
                    "-qc",
                    f'DROP DATABASE IF EXISTS "{self.database(service)}" WITH (FORCE)',
                ],
                capture_output=True,
                check=False,
            )
