"""Turning the runs into figures, ratios and targets: ``latest.json`` and ``latest.md``."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from typing import Any

from bench.chain import ORDER


def command() -> str:
    """How this run was started: ``make bench``, or the module with its options."""
    options = sys.argv[1:]
    return f"uv run python -m bench {' '.join(options)}" if options else "make bench"


#: The issue's targets: full telemetry against none, and each service on its own.
MIN_THROUGHPUT_RATIO = 0.75
MAX_P99_RATIO = 1.25
MAX_RSS_MIB = 80
MAX_READY_S = 1.0
MAX_LAB_READY_S = 20.0
#: Issue 9: the shop with the lab's receiver storing everything, against one discarding.
MIN_STORED_RATIO = 0.9
#: Issue 11, catalog and payments as Lambda functions with telemetry on: imports + init
#: + first invocation, and what the handler adds to a warm request (bench/coldstart.py).
MAX_COLD_START_MS = 350
MAX_WARM_OVERHEAD_MS = 5


def _receiver(runs: list[dict[str, Any]], requests: int) -> dict[str, Any]:
    """What the lab's receiver cost and kept, over the ``stored`` runs."""
    return {
        "cpu_ms_per_request": 1000 * sum(r["otlp"]["receiver_cpu_s"] for r in runs) / requests,
        "rss_mib": max(r["receiver"]["rss_mib"] for r in runs),
        "spans_stored": sum(r["receiver"]["spans_stored"] for r in runs),
        "logs_stored": sum(r["receiver"]["logs_stored"] for r in runs),
    }


def _mode(runs: list[dict[str, Any]]) -> dict[str, Any]:
    requests = sum(r["load"]["requests"] for r in runs)
    cpu_ms = {s: 1000 * sum(r["cpu_s"][s] for r in runs) / requests for s in ORDER}
    extra = {"receiver": _receiver(runs, requests)} if "receiver" in runs[0] else {}
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
        **extra,
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
    # The chain is CPU-bound: the throughput ratio its CPU per request allows, which
    # other jobs on a shared machine barely move (they move requests/s and p99 a lot).
    ratios["cpu_bound_throughput"] = 1 / ratios["cpu_ms_per_request"]
    stored_runs = [r for r in runs if r["mode"] == "stored"]
    stored = _mode(stored_runs) if stored_runs else None
    #: Lab receiver storing / receiver discarding, both with telemetry on.
    stored_ratios = None
    if stored:
        stored_ratios = {
            key: stored[key] / on[key] for key in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms")
        }
        # On a shared machine throughput swings with the other jobs; CPU per request
        # does not. The chain is CPU-bound, so this is the throughput the CPU allows
        # with the receiver storing (its own CPU counted) against discarding.
        stored_ratios["cpu_bound_throughput"] = on["cpu_ms_per_request"]["chain"] / (
            stored["cpu_ms_per_request"]["chain"] + stored["receiver"]["cpu_ms_per_request"]
        )
    both = (off, on)
    loads = [r["machine_load"] for r in runs if "machine_load" in r]
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
    if stored_ratios is not None:
        targets.append(
            {
                "what": "throughput, lab receiver storing / discarding",
                "target": f">= {MIN_STORED_RATIO}",
                "value": round(stored_ratios["requests_per_s"], 2),
                "met": stored_ratios["requests_per_s"] >= MIN_STORED_RATIO,
            }
        )
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
        "command": command(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "options": options,
        #: The 1-minute load average at the end of each run's load, least and most.
        "machine_load": [round(min(loads), 1), round(max(loads), 1)] if loads else None,
        "elapsed_s": round(elapsed_s, 1),
        "off": off,
        "on": on,
        "ratios": ratios,
        "stored": stored,
        "stored_ratios": stored_ratios,
        "lab": lab,
        "targets": targets,
        "runs": runs,
    }


def _busy(result: dict[str, Any]) -> str:
    """How loaded the machine was, and what that means for the figures."""
    load = result.get("machine_load")
    if not load:
        return ""
    text = f" Machine load (1-minute average) during the runs: {load[0]} to {load[1]}."
    if load[1] > (result["machine"]["cpus"] or 1):
        text += (
            " Other jobs wanted more CPU than there was: requests/s and latencies (and"
            " their ratios) swing with them, so read those ratios with care; CPU per"
            " request, and the throughput it allows, move much less."
        )
    return text


def markdown(result: dict[str, Any]) -> str:
    off, on, ratio, options = result["off"], result["on"], result["ratios"], result["options"]
    lines = [
        f"`{result['command']}` on {result['machine']['cpus']} CPUs, {result['when']}:"
        f" {options['rounds']} rounds of off/on/stored, {options['vus']} k6 users placing orders"
        f" (`POST /api/orders`) for {options['duration']} s each run.{_busy(result)}",
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
        f"| throughput the CPU allows | | | {ratio['cpu_bound_throughput']:.2f}x |",
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
    stored, stored_ratio = result.get("stored"), result.get("stored_ratios")
    if stored and stored_ratio:
        receiver = stored["receiver"]
        lines += [
            "",
            "| telemetry on, exported to | a receiver that discards | the lab's receiver,"
            " storing | storing / discarding |",
            "|---|---:|---:|---:|",
            f"| requests/s | {on['requests_per_s']:.0f} | {stored['requests_per_s']:.0f}"
            f" | {stored_ratio['requests_per_s']:.2f}x |",
            f"| p99 ms | {on['p99_ms']:.1f} | {stored['p99_ms']:.1f}"
            f" | {stored_ratio['p99_ms']:.2f}x |",
            f"| CPU ms per request, chain | {on['cpu_ms_per_request']['chain']:.1f}"
            f" | {stored['cpu_ms_per_request']['chain']:.1f} | |",
            f"| CPU ms per request, receiver | | {receiver['cpu_ms_per_request']:.2f} | |",
            f"| throughput the CPU allows (chain + receiver) | | |"
            f" {stored_ratio['cpu_bound_throughput']:.2f}x |",
            f"| receiver RSS MiB | | {receiver['rss_mib']:.0f} | |",
            f"| spans, log records stored | | {receiver['spans_stored']:,},"
            f" {receiver['logs_stored']:,} | |",
        ]
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
