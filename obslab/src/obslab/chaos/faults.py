"""``obslab chaos``: inject faults into the shop's services, list them, clear them, and
run the experiments of ``chaos/experiments``::

    obslab chaos inject payments latency --ms 800 --jitter 200 --for 5m
    obslab chaos inject payments error --status 503 --probability 0.5 --route /charges
    obslab chaos list [--json]
    obslab chaos clear [SERVICE]
    obslab chaos run chaos/experiments/slow-payments.yaml

It drives each service's admin API (``/admin/chaos/faults``, on the service's own
port: the edge never routes it) with the admin token, which it reads from
``OBSLAB_ADMIN_TOKEN`` or else from the native lab's runtime folder (``obslab up``
writes one there). The services' URLs are the lab's ports, which are also the ports
the compose stack publishes, so with ``OBSLAB_ADMIN_TOKEN`` set it drives that stack
too; ``--url`` points one command at another place. A bad argument is refused (exit
2) before anything is sent, so it changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from obslab.lab import LabSettings

SERVICES = ("gateway", "catalog", "orders", "inventory", "payments", "notifications")
#: The kinds of fault (obskit._chaos.KINDS; a test keeps the two the same: the CLI
#: never imports the services' kit).
KINDS = (
    "latency",
    "error",
    "abort",
    "cpu",
    "memory_leak",
    "slow_dependency",
    "dependency_outage",
    "worker_slowdown",
    "worker_crash",
)
MAX_DURATION_S = 3600
_DURATION = re.compile(r"^(\d+)(s|m|h)?$")

app = typer.Typer(
    help="Inject faults into the shop's services, list and clear them, run experiments.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)


class ChaosError(Exception):
    """A refusal worth a clear message; ``exit_code`` 2 for bad arguments, 1 otherwise."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_duration(text: str) -> int:
    """``30s``, ``5m``, ``1h`` or plain seconds, as seconds (at most one hour)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ChaosError(f"Bad duration {text!r}: say 30s, 5m or 1h.", exit_code=2)
    seconds = int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2] or "s"]
    if not 1 <= seconds <= MAX_DURATION_S:
        raise ChaosError(f"Bad duration {text!r}: from 1s to 1h.", exit_code=2)
    return seconds


def check_service(service: str) -> str:
    if service not in SERVICES:
        raise ChaosError(f"Unknown service {service!r}: one of {', '.join(SERVICES)}.", exit_code=2)
    return service


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ChaosError(f"Unknown fault {kind!r}: one of {', '.join(KINDS)}.", exit_code=2)
    return kind


class Admin:
    """The admin APIs of the shop's services, with the admin token."""

    def __init__(self, token: str, urls: dict[str, str]) -> None:
        self.urls = urls
        self.http = httpx.Client(headers={"authorization": f"Bearer {token}"}, timeout=10)

    @classmethod
    def of_lab(cls, settings: LabSettings | None = None, url: str = "") -> Admin:
        """The lab's (or, with ``url``, one service's) admin APIs and token."""
        settings = settings or LabSettings()
        urls = {name: f"http://127.0.0.1:{settings.port_of(name)}" for name in SERVICES[1:]} | {
            "gateway": f"http://127.0.0.1:{settings.gateway_ports[0]}"
        }
        if url:
            urls = dict.fromkeys(SERVICES, url.rstrip("/"))
        return cls(lab_token(settings), urls)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.urls[service]}/admin/chaos/faults{path}"
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ChaosError(f"{service} cannot be reached at {self.urls[service]}: {exc}") from exc
        if response.status_code == 422:
            raise ChaosError(f"{service} refused the fault: {_problems(response)}", exit_code=2)
        if response.is_error:
            raise ChaosError(f"{service} answered {response.status_code}: {_message(response)}")
        return response

    def inject(self, service: str, fault: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", service, "", json=fault).json())

    def faults(self, service: str) -> list[dict[str, Any]]:
        return list(self._call("GET", service, "").json())

    def clear(self, service: str) -> int:
        return int(self._call("DELETE", service, "").json()["cleared"])

    def remove(self, service: str, fault_id: str) -> None:
        """Remove one fault (ChaosError when it is gone already)."""
        self._call("DELETE", service, f"/{fault_id}")


def lab_token(settings: LabSettings) -> str:
    """``OBSLAB_ADMIN_TOKEN``, else the token ``obslab up`` wrote for the lab."""
    token = os.environ.get("OBSLAB_ADMIN_TOKEN", "")
    if token:
        return token
    path = settings.path("admin-token")
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ChaosError(
            f"No admin token: {path} is missing (is the lab up?) and OBSLAB_ADMIN_TOKEN is"
            " not set (the compose stack's token)."
        ) from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _problems(response: httpx.Response) -> str:
    try:
        details = response.json()["error"].get("details") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:200]
    return "; ".join(
        f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'fault'}: {d.get('msg', '')}"
        for d in details
    )


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
    from obslab.experiment import ExperimentError, Prometheus, load_experiment, run_experiment

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
