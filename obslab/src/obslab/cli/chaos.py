"""``obslab chaos``: inject faults into the shop's services, list them, clear them, and
run the experiments of ``chaos/experiments``::

    obslab chaos inject payments latency --ms 800 --jitter 200 --for 5m
    obslab chaos inject payments error --status 503 --probability 0.5 --route /charges
    obslab chaos list [--json]
    obslab chaos clear [SERVICE]
    obslab chaos run chaos/experiments/slow-payments.yaml

The commands are a thin layer over :mod:`obslab.chaos.faults` (the fault client) and
:mod:`obslab.chaos.experiment` (the experiment runner); ``--url`` points one command at
another place than the lab's port for the service.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from obslab.chaos.faults import KINDS, Admin, ChaosError, check_kind, check_service, parse_duration
from obslab.native.lab import LabSettings
from obslab.topology import SERVICES

app = typer.Typer(
    help="Inject faults into the shop's services, list and clear them, run experiments.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)


def _fail(error: ChaosError) -> typer.Exit:
    errors.print(f"[red]{error}[/]")
    return typer.Exit(error.exit_code)


UrlOption = Annotated[
    str, typer.Option(help="The service's own URL (default: the lab's port for it).")
]


@app.command()
def inject(
    service: Annotated[str, typer.Argument(help=", ".join(SERVICES))],
    kind: Annotated[str, typer.Argument(help=", ".join(KINDS))],
    ms: Annotated[int | None, typer.Option(help="Delay or CPU time, in ms.")] = None,
    jitter: Annotated[int | None, typer.Option(help="Up to this much more delay, in ms.")] = None,
    probability: Annotated[
        float | None, typer.Option(help="Share of requests hit, 0 to 1 (default 1).")
    ] = None,
    status: Annotated[int | None, typer.Option(help="The status of an error fault.")] = None,
    route: Annotated[
        str | None,
        typer.Option(help="Only this route template (a worker fault: this event type)."),
    ] = None,
    dependency: Annotated[str | None, typer.Option(help="database or redis.")] = None,
    kb: Annotated[int | None, typer.Option(help="memory_leak: kept per request.")] = None,
    cap_mb: Annotated[int | None, typer.Option(help="memory_leak: the most kept.")] = None,
    duration: Annotated[str, typer.Option("--for", help="30s, 5m, 1h (at most).")] = "5m",
    url: UrlOption = "",
) -> None:
    """Inject a fault into every replica of SERVICE until it expires or is cleared."""
    try:
        fault = {
            "kind": check_kind(kind),
            "duration_s": parse_duration(duration),
            "ms": ms,
            "jitter_ms": jitter,
            "probability": probability,
            "status": status,
            "route": route,
            "dependency": dependency,
            "kb": kb,
            "cap_mb": cap_mb,
        }
        check_service(service)
        admin = Admin.of_lab(url=url)
        try:
            created = admin.inject(service, {k: v for k, v in fault.items() if v is not None})
        finally:
            admin.close()
    except ChaosError as exc:
        raise _fail(exc) from exc
    console.print(
        f"Injected {created['kind']} into {service} (fault {created['id']}),"
        f" for {created['duration_s']}s. Clear it with `obslab chaos clear {service}`."
    )


@app.command("list")
def list_faults(
    service: Annotated[str, typer.Argument(help="Only this service.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
    url: UrlOption = "",
) -> None:
    """List the active faults of every service (or of one)."""
    try:
        services = [check_service(service)] if service else list(SERVICES)
        admin = Admin.of_lab(url=url)
        try:
            found = [fault for name in services for fault in admin.faults(name)]
        finally:
            admin.close()
    except ChaosError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps(found, indent=2))
        return
    if not found:
        console.print("No active faults.")
        return
    table = Table(title="active faults")
    for column in ("service", "id", "kind", "route", "parameters", "expires in"):
        table.add_column(column)
    for fault in found:
        table.add_row(
            fault["service"],
            fault["id"],
            fault["kind"],
            fault.get("route") or "*",
            _parameters(fault),
            f"{max(0, fault['expires_at'] - time.time()):.0f}s",
        )
    console.print(table)


def _parameters(fault: dict[str, Any]) -> str:
    keys = {
        "latency": ("ms", "jitter_ms"),
        "cpu": ("ms",),
        "error": ("status",),
        "slow_dependency": ("dependency", "ms", "jitter_ms"),
        "dependency_outage": ("dependency",),
        "worker_slowdown": ("ms", "jitter_ms"),
        "memory_leak": ("kb", "cap_mb"),
    }.get(fault["kind"], ())
    shown = [f"{key}={fault[key]}" for key in keys]
    if fault.get("probability", 1) < 1:
        shown.append(f"probability={fault['probability']}")
    return " ".join(shown)


@app.command()
def clear(
    service: Annotated[str, typer.Argument(help="Only this service.")] = "",
    url: UrlOption = "",
) -> None:
    """Remove every active fault (of every service, or of one)."""
    try:
        services = [check_service(service)] if service else list(SERVICES)
        admin = Admin.of_lab(url=url)
        try:
            cleared = sum(admin.clear(name) for name in services)
        finally:
            admin.close()
    except ChaosError as exc:
        raise _fail(exc) from exc
    console.print(f"Cleared {cleared} fault{'s' if cleared != 1 else ''}.")


@app.command()
def run(
    experiment: Annotated[Path, typer.Argument(help="chaos/experiments/<name>.yaml")],
    url: Annotated[
        str, typer.Option(help="Prometheus (default: the lab's).", envvar="OBSLAB_PROMETHEUS_URL")
    ] = "",
) -> None:
    """Run an experiment: check the steady state, inject, watch, roll back, check recovery."""
    from obslab.chaos.experiment import ExperimentError, load_experiment, run_experiment
    from obslab.prometheus import Prometheus

    try:
        loaded = load_experiment(experiment)
    except ExperimentError as exc:
        errors.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    settings = LabSettings()
    prometheus = url or f"http://127.0.0.1:{settings.prometheus_port}"
    try:
        admin = Admin.of_lab(settings)
    except ChaosError as exc:
        raise _fail(exc) from exc
    try:
        journal, path = run_experiment(loaded, admin, Prometheus(prometheus), settings, console)
    finally:
        admin.close()
    colour = "green" if journal["status"] == "completed" else "red"
    console.print(f"[{colour}]{journal['status']}[/]: {journal['verdict']}")
    print(f"Journal: {path}")  # not through rich: a long path must not be wrapped
    if journal["status"] != "completed":
        raise typer.Exit(1)
