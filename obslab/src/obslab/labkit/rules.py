"""Checking a rules file a learner wrote (labs 3 and 9): promtool accepts it, and each
recording rule's expression, evaluated against the lab's Prometheus, gives the same
series as the expected expression at the same instant.

Prometheus never loads the learner's file: evaluating an expression is what loading
it would do at each evaluation, and a wrong rule never lands in the lab's Prometheus.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from obslab.labkit.base import Context, Step

Series = dict[tuple[tuple[str, str], ...], float]


def promtool() -> str | None:
    """promtool's path: it comes with Prometheus (Debian's prometheus package too)."""
    return shutil.which("promtool")


def valid(path: Path, number: int) -> Step:
    """``promtool check rules`` on ``path`` (without promtool, the YAML is parsed only)."""
    title = "your rules file is valid (promtool check rules)"
    if not path.exists():
        return Step(title, False, f"{path} is gone: `obslab lab start {number}` writes it again.")
    tool = promtool()
    if tool is None:
        try:
            yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            return Step(title, False, f"{path} is not YAML: {exc}")
        return Step(title, True, detail="promtool not installed: only parsed")
    checked = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    if checked.returncode != 0:
        said = (checked.stderr or checked.stdout).strip().splitlines()
        return Step(title, False, f"promtool says: {' '.join(said[-2:])}")
    return Step(title, True)


def read(path: Path) -> dict[str, dict[str, Any]]:
    """Every rule of the file by its name (``record`` or ``alert``)."""
    loaded = yaml.safe_load(path.read_text()) or {}
    return {
        str(rule.get("record") or rule.get("alert")): rule
        for group in loaded.get("groups", [])
        for rule in group.get("rules", [])
    }


def _series(result: list[dict[str, Any]]) -> Series:
    return {
        tuple(sorted(s["metric"].items())): float(s["value"][1])
        for s in result
        if "__name__" not in s["metric"]
    }


def _same(mine: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(mine)
    return math.isclose(mine, expected, rel_tol=1e-6, abs_tol=1e-9)


def compare(
    context: Context, name: str, expr: str, expected_expr: str, at: float, series_are: str
) -> Step:
    """Rule ``name``: the series of ``expr`` against those of ``expected_expr`` at ``at``
    (a time in the past, so that no scrape lands between the two queries).
    ``series_are`` says what one series should be, for the hint about labels."""
    title = f"rule {name}"
    prometheus = context.stack.prometheus
    try:
        mine = prometheus.query(expr, at)
    except ValueError as exc:
        return Step(title, False, f"Prometheus refuses the expression of {name}: {exc}")
    expected = _series(prometheus.query(expected_expr, at))
    got = _series(mine)
    if any("__name__" in s["metric"] for s in mine):
        return Step(
            title,
            False,
            f"{name} returns raw series (with __name__): aggregate them with sum (...).",
        )
    if not expected:
        return Step(
            title,
            False,
            "The gateway served nothing in the last 5 minutes: send it some traffic"
            " (step 1 of the lab's README).",
        )
    if not got:
        return Step(
            title,
            False,
            f"{name} returns nothing, though the gateway served requests: is its filter"
            " right? A ratio with no errors must still be 0, not nothing.",
        )
    labels = {tuple(k for k, _ in key) for key in got}
    if labels != {tuple(k for k, _ in key) for key in expected}:
        kept = ", ".join(sorted({k for key in labels for k in key})) or "none"
        return Step(
            title,
            False,
            f"{name} keeps these labels: {kept}; each series should be {series_are}"
            " (which labels does the aggregation keep?).",
        )
    missing = [key for key in expected if key not in got]
    if missing:
        return Step(
            title,
            False,
            f"{name} has no series for {len(missing)} of the expected ones: where requests"
            " were served and none failed, the ratio must be 0, not nothing (background).",
        )
    wrong = [key for key, value in expected.items() if not _same(got[key], value)]
    if wrong or len(got) != len(expected):
        where = ", ".join(f"{k}={v}" for k, v in wrong[0]) if wrong else ""
        return Step(
            title,
            False,
            f"{name} has the right series but other values{f' (e.g. {where})' if where else ''}:"
            " check the metric, the filters, the window and the function.",
            f"{len(wrong)} of {len(expected)} series differ",
        )
    return Step(title, True, detail=f"{len(expected)} series")


def unit_test(
    context: Context,
    rules_path: Path,
    name: str,
    hint: str,
    groups: list[dict[str, Any]],
    file_name: str,
) -> Step:
    """promtool's unit tests ``groups`` (series one sample a minute, rules evaluated each
    minute) on ``rules_path``, written to ``file_name`` in the lab's folder for the
    learner to read when the step fails."""
    tool = promtool()
    if tool is None:
        return Step(name, False, "promtool is needed (it comes with Prometheus): install it.")
    path = context.folder() / file_name
    tests = [{"interval": "1m", **group} for group in groups]
    path.write_text(
        yaml.safe_dump(
            {"rule_files": [str(rules_path)], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
        )
    )
    ran = subprocess.run(
        [tool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    return Step(name, ran.returncode == 0, hint)
