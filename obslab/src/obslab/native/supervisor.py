"""The lab's supervisor: starts every process in order, restarts any that dies.

``obslab up`` runs it in the background (``python -m obslab.native.supervisor``); it owns
every process of the lab. It writes what it is doing to ``state.json`` in the
runtime folder, which ``obslab up`` shows as progress and ``obslab status`` reads.
SIGTERM (``obslab down``) stops the processes in reverse order, then itself.

A small loop rather than supervisord or systemd: neither is on a workshop laptop,
and the lab needs only start in order, wait until ready, restart on death.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from obslab.native.lab import LabSettings, plan
from obslab.native.process import Process, start, start_together, stop_group
from obslab.native.state import Component, LabState

#: Seconds before restarting a process that died, doubling up to the last.
BACKOFF = (0.5, 1.0, 2.0, 5.0)


class State:
    """The lab's :class:`LabState`, saved to ``path`` at every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lab = LabState()

    def component(self, process: Process, **fields: Any) -> None:
        entry = self.lab.components.setdefault(
            process.name,
            Component(
                url=process.url,
                health=process.health,
                log=str(self.path.parent / "logs" / f"{process.name}.log"),
            ),
        )
        for name, value in fields.items():
            setattr(entry, name, value)
        self.save()

    def status(self, status: Literal["running", "failed", "stopping", "stopped"]) -> None:
        self.lab.status = status
        self.save()

    def save(self) -> None:
        self.lab.save(self.path)


def supervise(settings: LabSettings) -> int:
    logs = settings.path("logs")
    state = State(settings.path("state.json"))
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    running: dict[str, tuple[Process, subprocess.Popen[bytes]]] = {}
    try:
        for stage in plan(settings):
            if stopping:
                return 0
            for process in stage:
                state.component(process, status="starting")
            try:
                popens = start_together(stage, logs)
            except Exception as exc:
                for process in stage:
                    state.component(process, status="failed", error=str(exc))
                state.status("failed")
                return 1
            for process in stage:
                running[process.name] = (process, popens[process.name])
                state.component(process, status="running", pid=popens[process.name].pid)
        state.status("running")

        failures = dict.fromkeys(running, 0)
        while not stopping:
            time.sleep(0.2)
            for name, (process, popen) in list(running.items()):
                if popen.poll() is None or stopping:
                    continue
                stop_group(popen.pid, timeout=2)  # whatever it left behind
                entry = state.lab.components[name]
                state.component(
                    process,
                    status="restarting",
                    exit_code=popen.returncode,
                    restarts=entry.restarts + 1,
                )
                time.sleep(BACKOFF[min(failures[name], len(BACKOFF) - 1)])
                failures[name] += 1
                if process.prepare is not None:
                    process.prepare()
                popen = start(process, logs / f"{name}.log")
                running[name] = (process, popen)
                state.component(process, status="running", pid=popen.pid)
        return 0
    finally:
        state.status("stopping")
        for process, popen in reversed(list(running.values())):
            stop_group(popen.pid)
            state.component(process, status="stopped", pid=None)
        state.status("stopped")


if __name__ == "__main__":
    sys.exit(supervise(LabSettings(runtime_dir=Path(sys.argv[1]))))
