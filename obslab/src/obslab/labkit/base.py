"""What a workshop lab is: an :class:`Exercise` with ``start``, ``check``, ``reset`` and,
for labs whose check is a finding, ``answer``; what its check reports (:class:`Step`);
and where each lab's progress is kept (:class:`Progress`).

A check is a list of steps, each passed or not with a hint for when it is not. The
hint points at the next thing to look at and never at the answer: the check of lab 2
knows which service is slow and must not say so.

Progress lives in the lab's runtime folder (``.obslab/run/labs/progress.json``), next
to the rest of the lab's state, so ``rm -r .obslab/run`` forgets it with everything else.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from obslab.native.lab import LabSettings

if TYPE_CHECKING:
    from obslab.labkit.sources import Stack

Status = Literal["not started", "started", "passed"]
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class LabError(Exception):
    """A refusal worth a clear message (a bad answer, a lab not started); exit 2."""


@dataclass
class Step:
    """One thing a check looks at: passed or not, and a nudge for when it is not."""

    name: str
    passed: bool
    hint: str = ""
    detail: str = ""  # what was seen, when it helps ("3 series, 2 differ")


@dataclass
class Record:
    """One lab's progress: when it was started, what start set up, the learner's answer."""

    status: Status = "not started"
    started_at: float = 0.0  # seconds since the epoch
    setup: dict[str, Any] = field(default_factory=dict)  # what start chose (never shown)
    answer: list[str] = field(default_factory=list)

    @property
    def started_ns(self) -> int:
        return int(self.started_at * 1e9)


class Progress:
    """Every lab's :class:`Record`, in one JSON file of the runtime folder."""

    def __init__(self, settings: LabSettings) -> None:
        self.path = settings.path("labs", "progress.json")

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def get(self, number: int) -> Record:
        return Record(**self._read().get(str(number), {}))

    def put(self, number: int, record: Record) -> None:
        everything = self._read()
        everything[str(number)] = record.__dict__
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(everything, indent=2))

    def forget(self, number: int) -> None:
        everything = self._read()
        everything.pop(str(number), None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(everything, indent=2))


@dataclass
class Context:
    """What a lab's start, check, reset and answer work with."""

    settings: LabSettings
    stack: Stack
    record: Record
    number: int

    def folder(self) -> Path:
        """This lab's own folder in the runtime folder (scaffold files live here)."""
        path = self.settings.path("labs", f"{self.number:02d}")
        path.mkdir(parents=True, exist_ok=True)
        return path


class Exercise:
    """One lab. Subclasses set the class attributes and override what they need; the
    registry sets ``number`` and ``folder`` (under labs/) from the lab's folder."""

    number: int = 0
    folder: str = ""

    title: ClassVar[str]
    minutes: ClassVar[int]
    #: What ``obslab lab answer N`` takes, for labs whose check is a finding ("" if none).
    answer_usage: ClassVar[str] = ""

    def start(self, context: Context) -> list[str]:
        """Set up what the lab needs; return what to tell the learner."""
        return []

    def check(self, context: Context) -> list[Step]:
        raise NotImplementedError

    def reset(self, context: Context) -> None:
        """Undo what :meth:`start` did (faults, scaffold files)."""

    def read_answer(self, words: list[str]) -> list[str]:
        """The answer, normalised; :class:`LabError` when it cannot be one."""
        raise LabError(f"Lab {self.number} takes no answer: its check reads the lab itself.")


def now() -> float:
    return time.time()


def read_trace_id(words: list[str]) -> str:
    """The one trace id of an answer, lower-cased; :class:`LabError` when it is not one."""
    if len(words) != 1 or not TRACE_ID.match(words[0].lower()):
        raise LabError("Give one trace id: 32 hex digits, as in the X-Trace-Id header.")
    return words[0].lower()
