"""A learner who follows a lab's README to the letter: its ```sh blocks run in order
against the test's lab, its ```promql queries against that lab's Prometheus.

The README is written for a lab on the default ports in ``.obslab/run``; the test's lab
runs on free ports in a temporary folder, so each block is moved there before it runs:
``uv run obslab`` becomes this environment's ``obslab``, ``127.0.0.1:<default port>``
the test lab's port, ``.obslab/run/`` its runtime folder. ``<placeholders>`` (``<trace
id>``) are what a learner would paste from an earlier step's output: the test says how
to find each one in the transcript so far.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from obslab.native.lab import LabSettings
from obslab.repo import ROOT as REPO
from tests.support.backends import wait_for
from tests.support.lab import OBSLAB, Lab

LABS = REPO / "labs"
_FENCE = re.compile(r"^(\s*)```(\w+)\s*$")
_CLOSE = re.compile(r"^\s*```\s*$")
PLACEHOLDER = re.compile(r"<([a-z][a-z ]*)>")
#: The check is run by the test itself, after the steps (it fails until they are done).
_CHECK = re.compile(r"^uv run obslab lab check \d+$")


@dataclass
class Block:
    language: str
    code: str
    shown_only: bool  # preceded by <!-- not run: why -->


def blocks(readme: Path) -> list[Block]:
    """Every fenced block with a language, in order (indented ones in lists too)."""
    found: list[Block] = []
    lines = readme.read_text().splitlines()
    previous = ""
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        indent, body = len(opening[1]), []
        index += 1
        while not _CLOSE.match(lines[index]):
            body.append(lines[index][indent:])
            index += 1
        index += 1
        shown_only = previous.startswith("<!-- not run")
        found.append(Block(opening[2], "\n".join(body) + "\n", shown_only))
        previous = ""
    return found


def readme(folder: str) -> Path:
    return LABS / folder / "README.md"


def localize(code: str, lab: Lab) -> str:
    """``code`` as it must read to run against the test's lab."""
    code = code.replace("uv run obslab", OBSLAB)
    code = code.replace(".obslab/run/", f"{lab.settings.runtime_dir}/")
    for name, field in LabSettings.model_fields.items():
        if name.endswith("_port"):
            ours = getattr(lab.settings, name)
            code = code.replace(f"127.0.0.1:{field.default}", f"127.0.0.1:{ours}")
    return code


def sh_blocks(path: Path) -> list[str]:
    return [b.code for b in blocks(path) if b.language == "sh" and not b.shown_only]


def follow(
    lab: Lab,
    path: Path,
    fill: Callable[[str, str], str],
    wait: dict[str, Callable[[], bool]] | None = None,
    act: dict[str, Callable[[], None]] | None = None,
) -> str:
    """Run every ``sh`` block of ``path`` in order, but the check; return the transcript.

    ``fill(placeholder, transcript)`` gives the value of a ``<placeholder>`` the first
    time a block needs it. ``wait`` maps a piece of a block to what must hold before it
    runs, polled for up to 60 s: the data a learner, slower than a test, would find
    there (Prometheus scrapes every 5 s). ``act`` maps a piece of a block to what the
    learner does before the first block holding it, outside a shell (a file edited).
    Every block must succeed.
    """
    transcript, values = "", {}
    actions = dict(act or {})
    for code in sh_blocks(path):
        if _CHECK.match(code.strip()):
            continue
        for piece in [piece for piece in actions if piece in code]:
            actions.pop(piece)()
        for piece, ready in (wait or {}).items():
            if piece in code:
                wait_for(ready, 60, f"what `{piece}` shows")
        for name in PLACEHOLDER.findall(code):
            if name not in values:
                values[name] = fill(name, transcript)
        for name, value in values.items():
            code = code.replace(f"<{name}>", value)
        transcript += f"$ {code}{run(lab, code)}"
    assert not actions, f"no block holds {list(actions)}"
    return transcript


def run(lab: Lab, code: str, env: dict[str, str] | None = None) -> str:
    """Run one block as the learner would, in the repository's root; its output. It
    must succeed."""
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", localize(code, lab)],
        env={**lab.env, **(env or {})},
        cwd=REPO,  # where a learner runs them: the repository's root
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, f"{code}\nexit {ran.returncode}\n{ran.stdout}\n{ran.stderr}"
    return ran.stdout


def run_queries(lab: Lab, path: Path) -> int:
    """Send every ``promql`` block to the lab's Prometheus; each must be accepted."""
    queries = [b.code.strip() for b in blocks(path) if b.language == "promql"]
    for query in queries:
        answer = httpx.get(f"{lab.prometheus}/api/v1/query", params={"query": query}).json()
        assert answer["status"] == "success", (query, answer)
    return len(queries)


def checks_with(path: Path, number: int) -> bool:
    """Whether the README tells the learner to run this lab's check."""
    return f"uv run obslab lab check {number}\n" in sh_blocks(path)


@contextmanager
def resetting(lab: Lab, number: int) -> Iterator[None]:
    """Reset the lab afterwards whatever happened (the lab is shared); the README's own
    first step starts it."""
    try:
        yield
    finally:
        lab.obslab("lab", "reset", str(number))


@contextmanager
def started(lab: Lab, number: int) -> Iterator[None]:
    """The lab started, and reset afterwards whatever happened (the lab is shared)."""
    begun = lab.obslab("lab", "start", str(number))
    try:
        assert begun.returncode == 0, begun.stdout + begun.stderr
        yield
    finally:
        lab.obslab("lab", "reset", str(number))


def check(lab: Lab, number: int) -> subprocess.CompletedProcess[str]:
    return lab.obslab("lab", "check", str(number))
