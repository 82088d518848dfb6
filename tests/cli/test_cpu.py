"""CPU per lab component, read from /proc: a component's children count as its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from obslab.load.cpu import CpuSampler, cpu_seconds
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


def test_a_sampler_stopped_between_samples_keeps_the_tail(sessions: dict[str, int]) -> None:
    """Stopped well before its first interval ends, the sampler still has one sample of
    the time it ran: a run k6 stops seconds into a window keeps that window's CPU."""

    def burnt() -> float:
        return cpu_seconds()[0].get(sessions["busy"], 0.0)

    with CpuSampler(sessions, interval=60) as cpu:
        before = burnt()
        wait_for(lambda: burnt() > before + 0.2, timeout=30, what="the busy child's CPU")
    (sample,) = cpu.samples
    assert sample["cpu_pct"]["busy"] > 0


#: Busy for half a second, then gone: k6 at the end of a run.
BUSY_THEN_GONE = "import time\nend = time.time() + 0.5\nwhile time.time() < end: pass"


def test_a_process_gone_since_the_last_sample_reads_zero(sessions: dict[str, int]) -> None:
    """A process that burnt CPU, then exited before the next sample, reads 0 there,
    not minus what it had burnt."""
    gone = subprocess.Popen([sys.executable, "-c", BUSY_THEN_GONE], start_new_session=True)
    with CpuSampler(sessions, {"gone": gone.pid}, interval=0.1) as cpu:
        wait_for(lambda: any(s["cpu_pct"]["gone"] > 0 for s in cpu.samples), 30, "its CPU")
        gone.wait()
        count = len(cpu.samples)
        wait_for(lambda: len(cpu.samples) > count, timeout=30, what="a sample after it")
    assert min(s["cpu_pct"]["gone"] for s in cpu.samples) == 0
