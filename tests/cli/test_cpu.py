"""CPU per lab component, read from /proc: a component's children count as its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from obslab.cpu import CpuSampler
from tests.support.backends import wait_for

#: A parent that spawns a busy child and waits: the CPU is all in the child.
BUSY_CHILD = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'while True: pass'])"


@pytest.fixture
def sessions() -> Iterator[dict[str, int]]:
    """Two components, each leading its own session: one busy (in a child), one idle."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY_CHILD], start_new_session=True)
    idle = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield {"busy": busy.pid, "idle": idle.pid}
    for process in (busy, idle):
        subprocess.run(["kill", "--", f"-{process.pid}"], check=False)
        process.wait()


def test_a_component_is_charged_for_the_cpu_of_its_children(sessions: dict[str, int]) -> None:
    """The CPU a child burns is its component's (its session's), and an idle one shows
    less; counted as a process alone, the waiting parent shows less too."""
    with CpuSampler(sessions, {"parent": sessions["busy"]}, interval=0.5) as cpu:
        wait_for(lambda: len(cpu.samples) >= 2, timeout=30, what="two CPU samples")
    peaks = {name: peak for name, _, peak in cpu.busiest()}
    assert peaks["busy"] > peaks["idle"]
    assert peaks["busy"] > peaks["parent"]
    assert all(sample["machine_pct"] > 0 for sample in cpu.samples)
