"""``obslab load SCENARIO``: a k6 scenario of ``load/`` against the lab (or any URL),
its thresholds the SLOs of ``observability/slo.yaml``; the checks and the knee are
:mod:`obslab.load`'s, this module runs k6 and prints.

Exit codes: 0 every threshold passed, 1 a threshold failed (named in the output), 2 bad
parameters, anything else k6's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obslab.load import knee
from obslab.load.cpu import CpuSampler
from obslab.load.k6 import (
    K6,
    K6_THRESHOLDS_FAILED,
    BadParameter,
    check_scenario,
    check_url,
    failed_thresholds,
    lab_components,
    parse_duration,
    read_slo,
    wait,
)
from obslab.native.lab import LabSettings
from obslab.repo import SLO_FILE

console = Console()
errors = Console(stderr=True)


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
        returncode = wait(k6)
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
