"""Processes a lab's ``start`` leaves running (lab 5's service to instrument, lab 12's
game-day scheduler), each in a session of its own with its pid in a file of the lab's
runtime folder: ``reset`` stops them, and so does ``obslab down`` (:func:`stop_all`),
so a lab never outlives the stack it runs against.

Not the lab's supervisor: these are the learner's, started and stopped with their
lab, not restarted when they exit (a typo in lab 5's file must stay visible in its log).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from obslab.labkit.base import Context, LabError
from obslab.native.lab import LabSettings
from obslab.native.process import Process, group_alive, healthy, start, stop_group


def spawn(context: Context, process: Process, ready: Callable[[], bool] | None = None) -> None:
    """Start ``process`` for this lab, its output in ``<name>.log`` of the lab's folder,
    and wait until it is ready: its ``health`` answers, or ``ready()`` holds
    (:class:`LabError` naming the log if it does not in time)."""
    folder = context.folder()
    log = folder / f"{process.name}.log"
    popen = start(process, log)
    (folder / f"{process.name}.pid").write_text(str(popen.pid))
    deadline = time.monotonic() + process.start_timeout
    while not (ready() if ready is not None else healthy(process.health)):
        if popen.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"{process.name} did not start: see {log}")
        time.sleep(0.1)


def running(context: Context, name: str) -> bool:
    """Whether what :func:`spawn` started as ``name`` still runs."""
    pid = _pid(context.folder() / f"{name}.pid")
    return pid is not None and group_alive(pid)


def stop(context: Context, name: str) -> None:
    """Stop what :func:`spawn` started as ``name``, if it still runs."""
    _stop(context.folder() / f"{name}.pid")


def stop_all(settings: LabSettings) -> None:
    """Stop every lab's background processes (``obslab down``)."""
    for pid_file in settings.path("labs").glob("*/*.pid"):
        _stop(pid_file)


def _pid(pid_file: Path) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(pid_file.read_text())
    return None


def _stop(pid_file: Path) -> None:
    pid = _pid(pid_file)
    if pid is not None and group_alive(pid):
        stop_group(pid, timeout=10)
    pid_file.unlink(missing_ok=True)
