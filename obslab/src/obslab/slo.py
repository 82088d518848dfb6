"""The one loader of ``observability/slo.yaml``, the SLO source: the rules and dashboards
generators, the k6 runner and the labs' checks read the objectives through :func:`load`,
so each number is written once. A file that is not whole, or whose numbers contradict
each other, is refused with :class:`SloError` naming what is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from obslab.repo import SLO_FILE

#: The journey steps every k6 scenario tags its requests with, each with its SLO.
STEPS = ("browse", "view_product", "place_order", "poll_order")


class SloError(Exception):
    """slo.yaml is missing a section, or a number in it is wrong."""


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objective: float
    #: Latency only: a request slower than this is a bad one.
    threshold_s: float = 0.0

    @property
    def budget(self) -> float:
        """The share of requests that may be bad (rounded: 1 - 0.995 is 0.00500000…44)."""
        return round(1 - self.objective, 9)


class Burn(BaseModel):
    """One multi-window burn-rate alert: the budget burns ``factor`` times too fast over
    both windows (long, short); ``lab_windows`` are the lab profile's."""

    model_config = ConfigDict(extra="forbid")

    severity: Literal["page", "ticket"]
    factor: float
    windows: tuple[str, str]
    lab_windows: tuple[str, str]


class Journey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # int | float: a whole number stays one, as k6 and the file spell it (p(95)<300).
    p95_ms: int | float
    p99_ms: int | float


class Slos(BaseModel):
    """The whole of slo.yaml."""

    window: str
    availability: Objective
    latency: Objective
    burn_rates: tuple[Burn, ...]
    journeys: dict[str, Journey]

    def objective(self, name: Literal["availability", "latency"]) -> Objective:
        return self.availability if name == "availability" else self.latency

    def fast_burn(self) -> Burn:
        """The burn that pages soonest: the largest factor."""
        return max(self.burn_rates, key=lambda burn: burn.factor)

    def for_k6(self) -> dict[str, Any]:
        """What k6 gets as ``SLO``: each journey step's p95 and p99, and
        ``max_error_rate``, the share of requests a load test may fail."""
        steps = {step: self.journeys[step].model_dump() for step in STEPS}
        return {**steps, "max_error_rate": self.availability.budget}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


def _share(value: Any) -> bool:
    return _number(value) and 0 < value <= 1


def _problems(document: dict[str, Any]) -> list[str]:
    """What is missing or not a number, in the words of the file's keys."""
    journeys = document.get("journeys") or {}
    problems = [
        f"journeys.{step}.{stat}"
        for step in STEPS
        for stat in ("p95_ms", "p99_ms")
        if not _positive((journeys.get(step) or {}).get(stat))
    ]
    for name in ("availability", "latency"):
        if not _share((document.get(name) or {}).get("objective")):
            problems.append(f"{name}.objective (a share, 0 < x <= 1)")
    if not _positive((document.get("latency") or {}).get("threshold_s")):
        problems.append("latency.threshold_s")
    if not all(_positive(burn.get("factor")) for burn in document.get("burn_rates") or [{}]):
        problems.append("burn_rates[].factor")
    return problems


def load(path: Path = SLO_FILE) -> Slos:
    """slo.yaml, checked: every section there, every number a number, and no journey's
    p99 above the latency SLO's threshold (a load test would pass while the SLO burns)."""
    try:
        document = yaml.safe_load(path.read_text())
        sections = {key: document[key] for key in ("journeys", "availability", "latency")}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise SloError(
            f"{path}: no readable journeys:, availability: and latency: sections ({exc})."
        ) from exc
    problems = _problems(document)
    if problems:
        raise SloError(f"{path}: missing or not a number: {', '.join(problems)}.")
    threshold_s = sections["latency"]["threshold_s"]
    slow = [step for step in STEPS if sections["journeys"][step]["p99_ms"] > threshold_s * 1000]
    if slow:
        raise SloError(
            f"{path}: the p99 of {', '.join(slow)} exceeds latency.threshold_s"
            f" ({threshold_s} s): a load test would pass while the latency SLO burns."
        )
    try:
        return Slos.model_validate(document)
    except ValueError as exc:
        raise SloError(f"{path}: {exc}") from exc
