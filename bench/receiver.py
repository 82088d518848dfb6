"""The native lab's own OTLP receiver, storing everything, as a bench backend.

Issue 9 asks that the lab's receiver (``python -m obslab.telemetry``, spans and log
records into a bounded SQLite file) never slows the shop: the bench runs the chain
with it and with :class:`bench.sink.DiscardingReceiver`, alternately, and compares.
It is started exactly as ``obslab up`` starts it, one fresh database per run.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.chain import cpu_seconds, rss_mib
from obslab.native import servers
from obslab.native.process import free_port, start_and_wait, stop_group


class StoringReceiver:
    """``python -m obslab.telemetry`` on a free port, its database in ``folder``."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        self._process = servers.telemetry(folder / "telemetry.sqlite3", port)
        self._popen = start_and_wait(self._process, folder / "telemetry.log")
        self.endpoint = f"http://127.0.0.1:{port}"

    def snapshot(self) -> dict[str, float]:
        """Spans and log records stored so far, and the receiver's CPU seconds."""
        counts = httpx.get(self._process.health, timeout=10).json()
        return {
            "spans_stored": counts["spans"],
            "logs_stored": counts["logs"],
            "receiver_cpu_s": cpu_seconds(self._popen.pid),
        }

    def rss(self) -> float:
        return rss_mib(self._popen.pid)

    def close(self) -> None:
        stop_group(self._popen.pid)
