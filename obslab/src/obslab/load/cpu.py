"""CPU per lab component while something runs, read from ``/proc`` (Linux only).

Each component of the native lab leads a session of its own (see ``process.py``),
so the CPU of a component is that of every process in its session: PostgreSQL's
backends, nginx's workers and RabbitMQ's Erlang VM count for their component.
``obslab load`` samples it to say which service saturates first.

Reading ``/proc`` is not atomic: a process that ends between the read of its own
line and its parent's can be counted twice in one sample and missed in the next,
so one sample's peak is approximate; a mean over several samples is sound.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds (user + system) used so far by every process: per session id, and
    per process id."""
    sessions: dict[int, float] = {}
    processes: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the command's closing parenthesis, fields start at 3 (state):
            # session is field 6, utime/stime 14/15, cutime/cstime 16/17.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        # Children it reaped (cutime, cstime) count too: a backend that exits
        # moves its CPU into its parent's, so a component's total never drops.
        seconds = sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICKS
        session = int(fields[3])
        sessions[session] = sessions.get(session, 0) + seconds
        processes[int(stat.parent.name)] = seconds
    return sessions, processes


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy so far (not idle, not
    waiting for I/O), whoever used them: on a shared machine, not only the lab."""
    # The first line of /proc/stat: "cpu user nice system idle iowait irq softirq steal ...".
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICKS


class CpuSampler:
    """Every ``interval`` seconds, each component's CPU since the last sample, in %
    of one core (a process that keeps one core busy shows 100), and the whole
    machine's (at most 100 times its cores)."""

    def __init__(
        self,
        components: dict[str, int],
        processes: dict[str, int] | None = None,
        interval: float = 5,
    ) -> None:
        self.components = components  # name -> pid (= session id): the session counts
        self.processes = processes or {}  # name -> pid: only the process counts
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _cpu(self) -> dict[str, float]:
        sessions, processes = cpu_seconds()
        return {
            **{name: sessions.get(pid, 0.0) for name, pid in self.components.items()},
            **{name: processes.get(pid, 0.0) for name, pid in self.processes.items()},
        }

    def _run(self) -> None:
        started = last_time = time.monotonic()
        last, last_machine = self._cpu(), machine_busy_seconds()
        while True:
            # Stopped, it takes one last sample of the time since the one before: a
            # run k6 stopped seconds into an interval still has that tail's CPU.
            stopping = self._stop.wait(self.interval)
            now, cpu, machine = time.monotonic(), self._cpu(), machine_busy_seconds()
            elapsed = now - last_time
            if elapsed >= 0.1:
                self.samples.append(
                    {
                        "t": round(now - started, 1),
                        # A process gone since the last sample (k6, at the end) reads 0.
                        "cpu_pct": {
                            n: round(max(0.0, 100 * (cpu[n] - last[n]) / elapsed), 1) for n in cpu
                        },
                        "machine_pct": round(100 * (machine - last_machine) / elapsed, 1),
                    }
                )
            if stopping:
                return
            last, last_time, last_machine = cpu, now, machine

    def busiest(self, top: int = 8) -> list[tuple[str, float, float]]:
        """(component, mean %, peak %) of the ``top`` busiest components, busiest first."""
        if not self.samples:
            return []
        rows = []
        for name in [*self.components, *self.processes]:
            values = [s["cpu_pct"][name] for s in self.samples]
            rows.append((name, sum(values) / len(values), max(values)))
        return sorted(rows, key=lambda row: row[2], reverse=True)[:top]
