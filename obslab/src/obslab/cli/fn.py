"""``obslab fn invoke``: run a service's Lambda handler here with recorded API Gateway
events, and print each answer and whether the invocation was cold or warm::

    obslab fn invoke catalog services/catalog/events/get-product.json
    obslab fn invoke catalog get-product create-product --repeat 2
    obslab fn invoke payments create-charge --json

An event is a file, or the name of one under ``services/<service>/events/``. This
process is the function's execution environment: its first invocation is the cold
start (the handler module imported, the app built, its clients opened: the init
phase), the others are warm. The service is configured as in Lambda, by its
``OBSLAB_*`` variables; without ``OBSLAB_DATABASE_URL`` it uses SQLite under
``.obslab/fn/``, and without Redis the catalog answers from its database. The
recorded events carry no credentials: each is signed here with a fresh service token,
as a calling service would sign it, unless it has an ``Authorization`` header.

The service's own log lines go to stderr, the answers to stdout. A bad argument (an
unknown service, a missing file, an event that is not JSON or not an HTTP API event)
is refused with exit 2 before anything is imported.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from obslab.repo import ROOT

#: The services packaged as functions, and the module whose ``handler`` Lambda calls.
FUNCTIONS = {"catalog": "catalog.function", "payments": "payments.function"}

app = typer.Typer(help="Run the shop's Lambda functions locally.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _refuse(message: str) -> typer.Exit:
    errors.print(f"[red]{message}[/]", soft_wrap=True)  # a path is not cut in two
    return typer.Exit(2)


def _load_event(service: str, name: str) -> dict[str, Any]:
    """The event in file ``name``, or in ``services/<service>/events/<name>.json``."""
    path = Path(name)
    if not path.is_file():
        recorded = ROOT / "services" / service / "events" / f"{name}.json"
        if not recorded.is_file():
            raise _refuse(f"No event file {name} (nor a recorded event of that name).")
        path = recorded
    try:
        event = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(f"{path} is not a JSON event: {exc}") from None
    # What Mangum needs to see an API Gateway HTTP API (payload 2.0) event.
    if (
        not isinstance(event, dict)
        or event.get("version") != "2.0"
        or "http" not in (event.get("requestContext") or {})
    ):
        raise _refuse(f"{path} is not an API Gateway HTTP API event (payload version 2.0).")
    return event


def _signed(event: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The event with a service token for ``settings.service_name``, as a caller's."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if "authorization" in headers or not settings.require_service_token:
        return event
    import obskit

    key = settings.service_token_key.get_secret_value()
    token = obskit.service_token(key, "obslab", settings.service_name)
    return {**event, "headers": {**headers, "authorization": f"Bearer {token}"}}


def _body(response: dict[str, Any]) -> Any:
    body = response.get("body", "")
    try:
        return json.loads(body)
    except (TypeError, json.JSONDecodeError):
        return body


@app.command()
def invoke(
    service: Annotated[str, typer.Argument(help=f"One of {', '.join(FUNCTIONS)}.")],
    events: Annotated[list[str], typer.Argument(help="Event files, or names of recorded events.")],
    repeat: Annotated[int, typer.Option(min=1, max=1000, help="Send each event N times.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answers as JSON.")] = False,
) -> None:
    """Invoke SERVICE's Lambda handler with each event; the first invocation is cold."""
    if service not in FUNCTIONS:
        raise _refuse(f"No function for {service!r}: one of {', '.join(FUNCTIONS)}.")
    loaded = [(name, _load_event(service, name)) for name in events]

    # As the lab does: the dev secrets are allowed here, never in production.
    os.environ.setdefault("OBSLAB_ENVIRONMENT", "dev")
    os.environ.setdefault("OBSLAB_DATA_DIR", str(ROOT / ".obslab" / "fn" / "data"))
    # As the template sets it: with OTEL_EXPORTER_OTLP_ENDPOINT pointing nowhere, each
    # invocation's flush gives up after a second per signal, not ten.
    os.environ.setdefault("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    started = time.perf_counter()
    try:
        # The service configures its logging while it loads: to stderr, so that
        # stdout holds only the answers.
        with contextlib.redirect_stdout(sys.stderr):
            handler = importlib.import_module(FUNCTIONS[service]).handler
    except Exception as exc:  # the init phase failed: say why, without a traceback
        errors.print(
            f"[red]The {service} handler did not start:[/] {type(exc).__name__}: {exc}",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    import_s = time.perf_counter() - started

    from obskit import LocalContext

    results = []
    try:
        for name, event in loaded:
            for _ in range(repeat):
                cold = handler.invocations == 0
                signed = _signed(event, handler.app.state.settings)
                begun = time.perf_counter()
                response = handler(signed, LocalContext(handler.name))
                results.append(
                    {
                        "event": name,
                        "request": f"{event['requestContext']['http']['method']}"
                        f" {event['rawPath']}",
                        "cold": cold,
                        # A cold start is the init phase and its first invocation.
                        "init_ms": round(import_s * 1000, 1) if cold else None,
                        "invocation_ms": round((time.perf_counter() - begun) * 1000, 1),
                        "status": response["statusCode"],
                        "body": _body(response),
                    }
                )
    finally:
        handler.close()

    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for result in results:
        when = (
            f"[cyan]cold start[/]: init {result['init_ms']:.0f} ms"
            f" + invocation {result['invocation_ms']:.1f} ms"
            if result["cold"]
            else f"[green]warm[/]: {result['invocation_ms']:.1f} ms"
        )
        console.print(f"[bold]{result['request']}[/] → {result['status']}  ({when})")
        if isinstance(result["body"], str):
            console.print(result["body"], markup=False)
        else:
            console.print_json(data=result["body"])
