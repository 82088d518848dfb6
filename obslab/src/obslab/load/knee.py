"""Where a breakpoint run broke: the arrival rate at which checkout's p95 and p99
crossed their SLOs, and the lab component that was busiest then.

k6's thresholds see the p99 of the whole run so far, which lags behind the moment
it went wrong; this reads every sample k6 wrote (``--out csv``) and cuts the run
into windows, each with its own arrival rate and p99.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at least ``share`` of them reach."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def windows(samples: Path, step: str, seconds: int = 10) -> list[dict[str, Any]]:
    """Per ``seconds`` of the run: iterations per second and ``step``'s p95 and p99 (ms)."""
    durations: dict[int, list[float]] = {}
    iterations: dict[int, int] = {}
    start = last = None
    with samples.open(newline="") as file:
        for row in csv.DictReader(file):
            second = int(row["timestamp"])
            start = second if start is None else start
            last = second if last is None else max(last, second)
            window = (second - start) // seconds
            if row["metric_name"] == "iterations":
                iterations[window] = iterations.get(window, 0) + 1
            elif row["metric_name"] == "http_req_duration" and f"step={step}" in (
                row["extra_tags"] or ""
            ).split("&"):
                durations.setdefault(window, []).append(float(row["metric_value"]))
    count = max([*iterations, *durations], default=-1) + 1

    def span(window: int) -> int:
        """The window's seconds: the last one ends where the run did (k6 may stop it)."""
        if window < count - 1 or start is None or last is None:
            return seconds
        return min(seconds, last - start - window * seconds + 1)

    return [
        {
            "t": window * seconds,
            "seconds": span(window),
            "rate": iterations.get(window, 0) / span(window),
            "requests": len(durations.get(window, [])),
            **{
                f"p{share}_ms": percentile(durations[window], share / 100)
                if window in durations
                else None
                for share in (95, 99)
            },
        }
        for window in range(count)
    ]


def busiest(
    cpu_samples: list[dict[str, Any]], start: float, end: float, ignore: tuple[str, ...] = ("k6",)
) -> tuple[str, float]:
    """The component with the highest mean CPU (% of one core) between ``start`` and ``end``,
    the load generator (``ignore``) aside: it is not the shop."""
    inside = [s["cpu_pct"] for s in cpu_samples if start < s["t"] <= end + 1e-9]
    if not inside:
        return "", 0.0
    names = [name for name in inside[0] if name not in ignore]
    means = {name: sum(s[name] for s in inside) / len(inside) for name in names}
    name = max(means, key=lambda n: means[n])
    return name, means[name]


def machine(cpu_samples: list[dict[str, Any]], start: float, end: float) -> float | None:
    """The whole machine's mean CPU (% of one core) between ``start`` and ``end``."""
    inside = [s["machine_pct"] for s in cpu_samples if start < s["t"] <= end + 1e-9]
    return sum(inside) / len(inside) if inside else None


def crossing(
    rows: list[dict[str, Any]], key: str, limit_ms: float, *, stopped: bool = False
) -> dict[str, Any] | None:
    """The first window whose ``key`` (``p99_ms``) is above ``limit_ms`` and stays above in
    the next one (one slow window on a shared machine is noise, two are a trend), or None.

    ``stopped``: the run ended because of its latency (k6 aborted it on a threshold),
    usually within seconds of the first bad window, so the run's end confirms a window
    above the limit: there is no next window, or only a last one the abort cut short
    (its ``seconds`` fewer than a whole window's), whose p99 counts only the requests
    that finished before the abort, the slow ones in flight being cut with it.
    """
    above = [w[key] is not None and w[key] > limit_ms for w in rows]

    def confirmed(i: int) -> bool:
        if i + 1 == len(rows):
            return stopped
        cut_short = i + 2 == len(rows) and rows[-1].get("seconds", 0) < rows[i].get("seconds", 0)
        return above[i + 1] or (stopped and cut_short)

    return next((rows[i] for i in range(len(rows)) if above[i] and confirmed(i)), None)
