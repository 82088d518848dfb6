"""Starting, watching and stopping the processes of the lab.

A :class:`Process` says how to run one program: its command, environment, a
``prepare`` step run before it starts (``initdb``, say) and how to tell it is
ready. The supervisor and the tests both start processes through it.
Each process leads its own session (process group), so stopping it stops every
child it spawned (RabbitMQ's Erlang VM, nginx's workers) and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: The ports :func:`free_port` has handed out in this process: never twice.
_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now on 127.0.0.1 for a server the caller is about to start (tests,
    the benchmark), below the kernel's ephemeral range and not handed out before here.

    Port 0 would be simpler, but the kernel takes it from the ephemeral range, where
    any outgoing connection may take the same port as its source before our server
    binds it: RabbitMQ then fails to start (``dist_port_already_used``).
    """
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(10_000, low) if low > 11_000 else 0
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port on 127.0.0.1")


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def healthy(health: str) -> bool:
    """Probe ``tcp://host:port`` (it accepts a connection) or an HTTP URL (it answers 200)."""
    if health.startswith("tcp://"):
        host, port = health.removeprefix("tcp://").rsplit(":", 1)
        return port_open(int(port), host)
    return http_ok(health)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true; raise TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


@dataclass
class Process:
    name: str
    argv: list[str]
    #: How to tell it is ready: ``tcp://127.0.0.1:5432`` or ``http://…/health/ready``.
    health: str
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    #: Where a person opens it, shown by ``obslab status``.
    url: str = ""
    #: The user it runs as, when started by root (PostgreSQL refuses to run as root).
    user: str | None = None
    #: Seconds to wait for ``ready`` after a start.
    start_timeout: float = 60.0


def start(process: Process, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``process`` in a session of its own, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = process.argv
    if process.user and os.geteuid() == 0:
        argv = ["runuser", "-u", process.user, "--", *argv]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            env={**os.environ, **process.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def start_and_wait(process: Process, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``process`` and wait until it is ready; raise with the log's path if it dies."""
    return start_together([process], log_path.parent, {process.name: log_path})[process.name]


def start_together(
    processes: list[Process], log_dir: Path, log_paths: dict[str, Path] | None = None
) -> dict[str, subprocess.Popen[bytes]]:
    """Start ``processes`` at once and wait until every one is ready.

    If one dies or is not ready in time, all of them are stopped and the error
    names it and its log.
    """
    logs = {p.name: (log_paths or {}).get(p.name, log_dir / f"{p.name}.log") for p in processes}
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for process in processes:
            if process.prepare is not None:
                process.prepare()
            started[process.name] = start(process, logs[process.name])
        waiting = list(processes)
        deadline = time.monotonic() + max(p.start_timeout for p in processes)
        while waiting:
            for process in list(waiting):
                popen = started[process.name]
                if popen.poll() is not None:
                    raise RuntimeError(
                        f"{process.name} exited with {popen.returncode}: see {logs[process.name]}"
                    )
                if healthy(process.health):
                    waiting.remove(process)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(p.name for p in waiting)
                raise TimeoutError(f"{names} not ready in time: see {log_dir}")
            time.sleep(0.1)
    except BaseException:
        stop_groups([popen.pid for popen in started.values()])
        raise
    return started


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies do not count).

    A zombie is dead but still answers signals until its parent reaps it; orphans of
    a killed supervisor may never be reaped where PID 1 does not reap (containers).
    """
    proc = Path("/proc")
    if not proc.is_dir():  # macOS: no /proc, ask the kernel
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # it ended while we looked
        if int(group) == pgid and state != "Z":
            return True
    return False


def stop_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL what is left after ``timeout``."""
    stop_groups([pid], timeout)


def stop_groups(pids: list[int], timeout: float = 20.0) -> None:
    """Stop several process groups at once: SIGTERM to all, then wait, then SIGKILL."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is ours, so it stops being alive
        if not any(group_alive(pid) for pid in pids):
            break
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
