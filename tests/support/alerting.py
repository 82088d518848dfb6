"""The lab's alert path on its own: Alertmanager with the committed config and the
lab's receiver behind its webhooks, as ``obslab up`` starts them, on free ports."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from obslab.native import servers
from obslab.native.lab import LabSettings, alertmanager_config
from obslab.native.process import free_port, start_together, stop_groups
from obslab.telemetry.store import Store


class Alerting:
    def __init__(self, runtime: Path) -> None:
        self.settings = LabSettings(
            _env_file=None,
            runtime_dir=runtime,
            otlp_port=free_port(),
            alertmanager_port=free_port(),
        )
        self.runtime = runtime
        self.alertmanager = f"http://127.0.0.1:{self.settings.alertmanager_port}"
        self.receiver = f"http://127.0.0.1:{self.settings.otlp_port}"
        #: What `obslab alerts` needs to read this receiver's store.
        self.env = {"OBSLAB_LAB_RUNTIME_DIR": str(runtime)}

    def fire(self, *labels: dict[str, str], minutes: float = 10) -> None:
        """Post alerts to Alertmanager's API as Prometheus does (each ends in ``minutes``
        unless posted again; 0 resolves it now)."""
        now = datetime.now(UTC)
        alerts = [
            {
                "labels": label_set,
                "annotations": {
                    "summary": f"{label_set['alertname']} of {label_set.get('service', '?')}",
                    "runbook_url": f"observability/runbooks/{label_set['alertname']}.md",
                },
                # Now: Alertmanager sends a new group whose alerts started longer ago
                # than group_wait at once, before an inhibiting alert posted with them
                # is taken into account (alertmanager#2229).
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
            }
            for label_set in labels
        ]
        answer = httpx.post(f"{self.alertmanager}/api/v2/alerts", json=alerts, timeout=10)
        assert answer.status_code == 200, answer.text

    def held(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds, each with its status (active or suppressed)."""
        answer = httpx.get(f"{self.alertmanager}/api/v2/alerts", timeout=10)
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    def delivered(self) -> list[dict[str, Any]]:
        """What the receiver stored, as `obslab alerts --json` lists it."""
        store = Store(self.settings.path("data", "telemetry.sqlite3"), readonly=True)
        try:
            return store.alerts()
        finally:
            store.close()


@contextmanager
def running_alerting() -> Iterator[Alerting]:
    """Alertmanager and the lab's receiver, started together; stopped after."""
    runtime = Path(tempfile.mkdtemp(prefix="obslab-alerting-"))
    alerting = Alerting(runtime)
    s = alerting.settings
    receiver = servers.telemetry(s.path("data", "telemetry.sqlite3"), s.otlp_port)
    config = alertmanager_config(s.path("alertmanager", "alertmanager.yml"), receiver.url)
    manager = servers.alertmanager(config, s.path("data", "alertmanager"), s.alertmanager_port)
    started = start_together([receiver, manager], s.path("logs"))
    try:
        yield alerting
    finally:
        stop_groups([popen.pid for popen in started.values()])
        shutil.rmtree(runtime, ignore_errors=True)
