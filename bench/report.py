"""Turning the runs into figures, ratios and targets: ``latest.json`` and ``latest.md``."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import UTC, datetime
from typing import Any

from bench.chain import ORDER

COMMAND = "make bench"

#: The issue's targets: full telemetry against none, and each service on its own.
MIN_THROUGHPUT_RATIO = 0.75
MAX_P99_RATIO = 1.25
MAX_RSS_MIB = 80
MAX_READY_S = 1.0
MAX_LAB_READY_S = 20.0


def _mode(runs: list[dict[str, Any]]) -> dict[str, Any]:
    requests = sum(r["load"]["requests"] for r in runs)
    cpu_ms = {s: 1000 * sum(r["cpu_s"][s] for r in runs) / requests for s in ORDER}
    return {
        "runs": len(runs),
        "requests": requests,
        # Percentiles cannot be merged; the mean of each run's is close enough for
        # runs of the same length under the same load.
        **{
            key: statistics.fmean(r["load"][key] for r in runs)
            for key in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms")
        },
        "error_rate": sum(r["load"]["error_rate"] * r["load"]["requests"] for r in runs) / requests,
        "cpu_ms_per_request": {**cpu_ms, "chain": sum(cpu_ms.values())},
        # The worst of all runs: a target holds only if it holds every time.
        "rss_mib": {s: max(r["rss_mib"][s] for r in runs) for s in ORDER},
        "ready_s": {s: max(r["ready_s"][s] for r in runs) for s in ORDER},
        "all_drained": all(r["drained"] for r in runs),
        "otlp": {k: sum(r["otlp"][k] for r in runs) for k in runs[0]["otlp"]},
    }


def summarise(
    runs: list[dict[str, Any]],
    lab: dict[str, float] | None,
    options: dict[str, Any],
    elapsed_s: float,
) -> dict[str, Any]:
    off = _mode([r for r in runs if r["mode"] == "off"])
    on = _mode([r for r in runs if r["mode"] == "on"])
    ratios = {key: on[key] / off[key] for key in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms")}
    ratios["cpu_ms_per_request"] = (
        on["cpu_ms_per_request"]["chain"] / off["cpu_ms_per_request"]["chain"]
    )
    both = (off, on)
    targets = [
        {
            "what": "throughput, on / off",
            "target": f">= {MIN_THROUGHPUT_RATIO}",
            "value": round(ratios["requests_per_s"], 2),
            "met": ratios["requests_per_s"] >= MIN_THROUGHPUT_RATIO,
        },
        {
            "what": "p99, on / off",
            "target": f"<= {MAX_P99_RATIO}",
            "value": round(ratios["p99_ms"], 2),
            "met": ratios["p99_ms"] <= MAX_P99_RATIO,
        },
        {
            "what": "largest RSS of a service (MiB)",
            "target": f"<= {MAX_RSS_MIB}",
            "value": round(max(m["rss_mib"][s] for m in both for s in ORDER), 2),
            "met": all(m["rss_mib"][s] <= MAX_RSS_MIB for m in both for s in ORDER),
        },
        {
            "what": "slowest launch to ready of a service (s)",
            "target": f"<= {MAX_READY_S}",
            "value": round(max(m["ready_s"][s] for m in both for s in ORDER), 2),
            "met": all(m["ready_s"][s] <= MAX_READY_S for m in both for s in ORDER),
        },
    ]
    if lab is not None:
        targets.append(
            {
                "what": "native lab: `obslab up` again, to ready (s)",
                "target": f"<= {MAX_LAB_READY_S}",
                "value": round(lab["up_again_s"], 2),
                "met": lab["up_again_s"] <= MAX_LAB_READY_S,
            }
        )
    return {
        "command": COMMAND,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "options": options,
        "elapsed_s": round(elapsed_s, 1),
        "off": off,
        "on": on,
        "ratios": ratios,
        "lab": lab,
        "targets": targets,
        "runs": runs,
    }


def markdown(result: dict[str, Any]) -> str:
    off, on, ratio, options = result["off"], result["on"], result["ratios"], result["options"]
    lines = [
        f"`{result['command']}` on {result['machine']['cpus']} CPUs, {result['when']}:"
        f" {options['rounds']} rounds of off/on, {options['vus']} k6 users placing orders"
        f" (`POST /api/orders`) for {options['duration']} s each run.",
        "",
        "| checkout, whole chain | telemetry off | telemetry on | on / off |",
        "|---|---:|---:|---:|",
        f"| requests/s | {off['requests_per_s']:.0f} | {on['requests_per_s']:.0f}"
        f" | {ratio['requests_per_s']:.2f}x |",
    ]
    for key, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        lines.append(f"| {name} ms | {off[key]:.1f} | {on[key]:.1f} | {ratio[key]:.2f}x |")
    lines += [
        f"| CPU ms per request | {off['cpu_ms_per_request']['chain']:.1f}"
        f" | {on['cpu_ms_per_request']['chain']:.1f} | {ratio['cpu_ms_per_request']:.2f}x |",
        f"| errors | {off['error_rate']:.2%} | {on['error_rate']:.2%} | |",
        "",
        "| service | CPU ms/request off | on | RSS MiB off | on | launch to ready s off | on |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in ORDER:
        lines.append(
            f"| {s} | {off['cpu_ms_per_request'][s]:.2f} | {on['cpu_ms_per_request'][s]:.2f}"
            f" | {off['rss_mib'][s]:.0f} | {on['rss_mib'][s]:.0f}"
            f" | {off['ready_s'][s]:.2f} | {on['ready_s'][s]:.2f} |"
        )
    lab = result["lab"]
    if lab is not None:
        lines += [
            "",
            f"Native lab (`obslab up`, every component ready): {lab['up_fresh_s']:.1f} s on"
            f" fresh data, {lab['up_again_s']:.1f} s started again; `obslab down`"
            f" {lab['down_s']:.1f} s.",
        ]
    lines += ["", "| target | wanted | measured | met |", "|---|---|---:|---|"]
    for target in result["targets"]:
        met = "yes" if target["met"] else "**no**"
        lines.append(f"| {target['what']} | {target['target']} | {target['value']:.2f} | {met} |")
    lines += [
        "",
        "RSS is the largest after a run's load; launch to ready the slowest of the runs.",
    ]
    return "\n".join(lines) + "\n"
