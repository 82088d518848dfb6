"""The lab's supervisor: starts every process in order, restarts any that dies.

``obslab up`` runs it in the background (``python -m obslab.supervisor``); it owns
every process of the lab. It writes what it is doing to ``state.json`` in the
runtime folder, which ``obslab up`` shows as progress and ``obslab status`` reads.
SIGTERM (``obslab down``) stops the processes in reverse order, then itself.

A small loop rather than supervisord or systemd: neither is on a workshop laptop,
and the lab needs only start in order, wait until ready, restart on death.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from obslab.lab import LabSettings, plan
from obslab.process import Process, start, start_together, stop_group

#: Seconds before restarting a process that died, doubling up to the last.
BACKOFF = (0.5, 1.0, 2.0, 5.0)


class State:
    """``state.json``: what the supervisor started, where, and how it is doing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {
            "supervisor_pid": os.getpid(),
            "status": "starting",
            "components": {},
        }

    def component(self, process: Process, **fields: Any) -> None:
        entry = self.data["components"].setdefault(
            process.name,
            {
                "url": process.url,
                "health": process.health,
                "restarts": 0,
                "log": str(self.path.parent / "logs" / f"{process.name}.log"),
            },
        )
        entry.update(fields)
        self.save()

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=2))
        temporary.replace(self.path)  # atomic: a reader never sees half a file


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
                state.data["status"] = "failed"
                state.save()
                return 1
            for process in stage:
                running[process.name] = (process, popens[process.name])
                state.component(process, status="running", pid=popens[process.name].pid)
        state.data["status"] = "running"
        state.save()

        failures = dict.fromkeys(running, 0)
        while not stopping:
            time.sleep(0.2)
            for name, (process, popen) in list(running.items()):
                if popen.poll() is None or stopping:
                    continue
                stop_group(popen.pid, timeout=2)  # whatever it left behind
                entry = state.data["components"][name]
                state.component(
                    process,
                    status="restarting",
                    exit_code=popen.returncode,
                    restarts=entry["restarts"] + 1,
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
        state.data["status"] = "stopping"
        state.save()
        for process, popen in reversed(list(running.values())):
            stop_group(popen.pid)
            state.component(process, status="stopped", pid=None)
        state.data["status"] = "stopped"
        state.save()


if __name__ == "__main__":
    sys.exit(supervise(LabSettings(runtime_dir=Path(sys.argv[1]))))
