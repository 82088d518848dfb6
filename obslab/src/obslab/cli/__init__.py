"""``obslab``: run the native lab (``up``, ``down``, ``status``, ``logs``) and read its
traces (``traces``, ``trace``, ``logs --trace``) and delivered alerts (``alerts``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from obslab.cli import chaos, fn, lab, load, token
from obslab.labkit import background
from obslab.native.lab import LabSettings, plan
from obslab.native.process import group_alive, healthy, stop_group, stop_groups
from obslab.native.servers import MissingBinary
from obslab.native.state import LabState
from obslab.telemetry import show
from obslab.telemetry.store import Store

app = typer.Typer(
    help="The obslab native lab: the shop and its monitoring as processes.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

# `obslab load SCENARIO [-- k6 args]`: k6 and the SLO thresholds live in their own module.
app.command("load", context_settings={"allow_extra_args": True})(load.command)
# `obslab token`: a bearer token for the lab's demo client.
app.command("token")(token.command)
# `obslab chaos inject|list|clear|run`: fault injection through the services' admin API.
app.add_typer(chaos.app, name="chaos")
# `obslab fn invoke SERVICE EVENT.json`: a service's Lambda handler, run here.
app.add_typer(fn.app, name="fn")
# `obslab lab list|start|check|answer|reset`: the workshop labs of labs/.
app.add_typer(lab.app, name="lab")


def _state(settings: LabSettings) -> LabState | None:
    return LabState.read(settings.path("state.json"))


def _supervisor_alive(state: LabState | None) -> bool:
    return state is not None and state.status != "stopped" and group_alive(state.supervisor_pid)


def _clean_leftovers(state: LabState | None) -> None:
    """After a crash or kill -9, stop whatever the last supervisor left running."""
    pids = state.pids().values() if state else ()
    stop_groups([pid for pid in pids if group_alive(pid)])


def _report(settings: LabSettings) -> dict[str, Any]:
    state = _state(settings) or LabState()
    running = _supervisor_alive(state)
    components = [
        {
            "name": name,
            "pid": entry.pid,
            "url": entry.url,
            "status": entry.status,
            "health": "healthy"
            if running and healthy(entry.health)
            else "unhealthy"
            if running
            else "stopped",
            "restarts": entry.restarts,
            "log": entry.log,
        }
        for name, entry in state.components.items()
    ]
    return {
        "mode": "native",
        "running": running,
        "runtime_dir": str(settings.path()),
        "components": components,
    }


def _table(report: dict[str, Any]) -> Table:
    table = Table(title="obslab native lab")
    for column in ("component", "health", "restarts", "where"):
        table.add_column(column)
    for c in report["components"]:
        colour = "green" if c["health"] == "healthy" else "red"
        table.add_row(c["name"], f"[{colour}]{c['health']}[/]", str(c["restarts"]), c["url"])
    return table


@app.command()
def up(
    otlp: Annotated[
        str, typer.Option(help="Send every service's traces and logs here (OTLP/HTTP).")
    ] = "",
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for everything to be ready.")
    ] = 300,
) -> None:
    """Start the shop, its backends, nginx, Prometheus and Alertmanager; wait until ready."""
    settings = LabSettings(otlp_endpoint=otlp) if otlp else LabSettings()
    state = _state(settings)
    if _supervisor_alive(state):
        console.print("The lab is already running.")
        console.print(_table(_report(settings)))
        return
    _clean_leftovers(state)
    # A new admin token for each lab: plan() makes it, the services get it.
    settings.path("admin-token").unlink(missing_ok=True)
    try:
        # Fails early, before anything starts, when a binary is missing.
        expected = [process.name for stage in plan(settings) for process in stage]
    except MissingBinary as exc:
        errors.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc

    settings.path("logs").mkdir(parents=True, exist_ok=True)
    settings.path("state.json").unlink(missing_ok=True)
    env = {**os.environ, **({"OBSLAB_LAB_OTLP_ENDPOINT": otlp} if otlp else {})}
    with settings.path("logs", "supervisor.log").open("ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "obslab.native.supervisor", str(settings.path())],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    started = time.monotonic()
    with console.status("Starting the lab ...") as progress:
        while True:
            state = _state(settings) or LabState()
            ready = [n for n, c in state.components.items() if c.status == "running"]
            progress.update(
                f"Starting the lab: {len(ready)}/{len(expected)} ready"
                f" ({time.monotonic() - started:.0f}s)"
            )
            if state.status == "running":
                break
            failed = [(n, c) for n, c in state.components.items() if c.status == "failed"]
            if failed or supervisor.poll() is not None or time.monotonic() - started > timeout:
                for name, entry in failed:
                    errors.print(f"[red]{name} did not start:[/] {entry.error}")
                errors.print(f"See the logs in {settings.path('logs')}.")
                stop_group(supervisor.pid)
                raise typer.Exit(1)
            time.sleep(0.25)
    elapsed = time.monotonic() - started
    console.print(_table(_report(settings)))
    console.print(
        f"Ready in {elapsed:.1f}s. Try:\n"
        f"  curl -s 127.0.0.1:{settings.edge_port}/api/products\n"
        f"  open http://127.0.0.1:{settings.prometheus_port}/targets"
        + ("" if otlp else "\n  uv run obslab traces")
        + "\n  uv run obslab alerts"
    )


@app.command()
def down() -> None:
    """Stop everything `obslab up` started, and only that."""
    settings = LabSettings()
    state = _state(settings)
    background.stop_all(settings)  # what a lab left running (lab 5's service)
    if not _supervisor_alive(state):
        _clean_leftovers(state)
        console.print("The lab is not running.")
        return
    if state is not None:  # alive, so read: the check is for the type checker
        stop_group(state.supervisor_pid, timeout=120)
    _clean_leftovers(_state(settings))
    console.print("The lab is stopped.")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
) -> None:
    """Show each component's health and where to open it."""
    report = _report(LabSettings())
    if as_json:
        print(json.dumps(report, indent=2))
    elif not report["running"]:
        console.print("The lab is not running: start it with `make up`.")
    else:
        console.print(_table(report))


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]


def _store() -> Store:
    """The lab's trace and log store, read-only; exit 2 when there is none."""
    path = LabSettings().path("data", "telemetry.sqlite3")
    if not path.exists():
        errors.print(
            f"No traces in {path}: start the lab with `make up`"
            " (with --otlp, they go to that collector instead)."
        )
        raise typer.Exit(2)
    return Store(path, readonly=True)


@app.command()
def traces(
    service: Annotated[str, typer.Option(help="Only traces that touched this service.")] = "",
    route: Annotated[str, typer.Option(help="Only traces whose root route contains this.")] = "",
    min_ms: Annotated[float, typer.Option(help="Only traces at least this long.")] = 0,
    errors_only: Annotated[
        bool, typer.Option("--errors", help="Only traces with an error.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List recent traces: root route, services touched, duration, error."""
    store = _store()
    found = store.traces(
        service=service, route=route, min_ms=min_ms, errors=errors_only, limit=limit
    )
    store.close()
    if as_json:
        print(json.dumps(found, indent=2))
    elif not found:
        console.print("No traces match (exporters send every few seconds).")
    else:
        console.print(show.traces_table(found))


@app.command()
def trace(
    trace_id: Annotated[str, typer.Argument(help="32 hex digits, as in X-Trace-Id.")],
    as_json: JsonOption = False,
) -> None:
    """Show one trace as a waterfall: every span, its timing, status and key attributes."""
    store = _store()
    spans = store.trace(trace_id)
    store.close()
    if not spans:
        errors.print(f"No spans of trace {trace_id} (yet: exporters send every few seconds).")
        raise typer.Exit(1)
    tree = show.waterfall(spans)
    if as_json:
        print(json.dumps(tree, indent=2))
    else:
        console.print(show.waterfall_view(tree))


@app.command()
def alerts(
    firing: Annotated[bool, typer.Option("--firing", help="Only alerts still firing.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the alerts Alertmanager delivered to the lab: state, severity, service, runbook."""
    store = _store()
    found = store.alerts(firing=firing, limit=limit)
    store.close()
    if as_json:
        print(json.dumps(found, indent=2))
    elif not found:
        console.print("No alerts delivered yet: an injected fault fires one within a minute.")
    else:
        console.print(show.alerts_table(found))


def _trace_logs(trace_id: str, as_json: bool) -> None:
    store = _store()
    records = store.logs(trace_id)
    store.close()
    if as_json:
        print(json.dumps(records, indent=2))
    elif not records:
        errors.print(f"No log lines of trace {trace_id} (yet).")
        raise typer.Exit(1)
    else:
        console.print(show.log_lines(records), soft_wrap=True)


@app.command()
def logs(
    component: Annotated[
        str, typer.Argument(help="gateway-1, orders, postgres, prometheus, ...")
    ] = "",
    trace_id: Annotated[
        str, typer.Option("--trace", help="Instead: the log lines of one trace, every service.")
    ] = "",
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f")] = True,
    lines: Annotated[int, typer.Option("--lines", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="With --trace: print JSON.")] = False,
) -> None:
    """Show (and follow) the log of one component, or every log line of one trace."""
    if trace_id:
        _trace_logs(trace_id, as_json)
        return
    if not component:
        errors.print("Name a component (obslab logs orders) or a trace (--trace ID).")
        raise typer.Exit(2)
    settings = LabSettings()
    path: Path = settings.path("logs", f"{component}.log")
    if not path.exists():
        known = sorted(p.stem for p in settings.path("logs").glob("*.log"))
        errors.print(
            f"No log for {component!r}. Known: {', '.join(known) or 'none (is the lab up?)'}"
        )
        raise typer.Exit(2)
    with path.open() as log:
        for line in log.readlines()[-lines:]:
            print(line, end="")
        while follow:
            line = log.readline()
            if line:
                print(line, end="", flush=True)
            else:
                time.sleep(0.2)
