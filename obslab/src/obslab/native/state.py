"""``state.json``: what the supervisor started, where, and how each process is doing.

The supervisor writes it (atomically: a reader never sees half a file); ``obslab up``,
``status`` and ``down``, the load runner and the chaos experiments' killer read it, all
through :class:`LabState`, so the file has one shape and one reader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

Status = Literal["starting", "running", "restarting", "failed", "stopped"]


class Component(BaseModel):
    """One process of the lab."""

    url: str = ""
    health: str = ""
    log: str = ""
    status: Status = "starting"
    pid: int | None = None
    restarts: int = 0
    exit_code: int | None = None
    error: str = ""


class LabState(BaseModel):
    supervisor_pid: int = Field(default_factory=os.getpid)
    status: Literal["starting", "running", "failed", "stopping", "stopped"] = "starting"
    components: dict[str, Component] = Field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> LabState | None:
        """The state in ``path``; None when there is none (no lab, or not yet written)."""
        try:
            return cls.model_validate_json(path.read_text())
        except (FileNotFoundError, ValidationError):
            return None

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(self.model_dump_json(indent=2))
        temporary.replace(path)  # atomic: a reader never sees half a file

    def pids(self) -> dict[str, int]:
        """Each running component's process group, by name."""
        return {name: c.pid for name, c in self.components.items() if c.pid}
