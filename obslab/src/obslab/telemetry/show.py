"""How ``obslab traces``, ``trace``, ``logs --trace`` and ``alerts`` look in a terminal.

Each function turns what :class:`~obslab.telemetry.store.Store` returns into a
rich renderable; ``--json`` prints the same data without them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

#: The attributes worth a line in the waterfall: what was called, how it went.
KEY_ATTRIBUTES = (
    "http.request.method",
    "http.route",
    "url.full",
    "http.response.status_code",
    "messaging.destination.name",
    "messaging.operation.type",
    "db.system",
    "db.system.name",
    "db.statement",
    "db.query.text",
    "error.type",
    # A Lambda invocation's (obskit._function): cold or warm.
    "faas.coldstart",
)
COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")
BAR_WIDTH = 24
#: The broker hop: a producer span publishes a message, a consumer span handles it.
KIND_MARKS = {"producer": "→ broker", "consumer": "← broker"}


def _clock(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def _colour(service: str, services: list[str]) -> str:
    return COLOURS[services.index(service) % len(COLOURS)]


def traces_table(traces: list[dict[str, Any]]) -> Table:
    table = Table(title="recent traces (newest first)")
    table.add_column("trace id", no_wrap=True, min_width=32)  # whole, to copy it
    for column in ("started", "route", "services", "ms", "spans", "error"):
        table.add_column(column, justify="right" if column in ("ms", "spans") else "left")
    for t in traces:
        table.add_row(
            t["trace_id"],
            _clock(t["start_ns"]),
            t["route"],
            ", ".join(t["services"]),
            f"{t['duration_ms']:.1f}",
            str(t["spans"]),
            "[red]error[/]" if t["error"] else "",
        )
    return table


def waterfall(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """A trace as a tree: its spans depth first, each with ``depth`` and ``offset_ms``.

    A span whose parent is missing (not exported yet, or dropped) is shown as a root.
    """
    ids = {span["span_id"] for span in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    for span in spans:  # already in start order, so children are too
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else ""
        children.setdefault(parent, []).append(span)
    start = min(span["start_ns"] for span in spans)
    end = max(span["end_ns"] for span in spans)
    ordered: list[dict[str, Any]] = []

    def visit(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            offset_ms = round((span["start_ns"] - start) / 1e6, 3)
            ordered.append({**span, "depth": depth, "offset_ms": offset_ms})
            visit(span["span_id"], depth + 1)

    visit("", 0)
    return {
        "trace_id": spans[0]["trace_id"],
        "duration_ms": round((end - start) / 1e6, 3),
        "services": sorted({span["service"] for span in spans}),
        "spans": ordered,
    }


def _bar(span: dict[str, Any], total_ms: float, colour: str) -> Text:
    scale = BAR_WIDTH / total_ms if total_ms else 0
    begin = min(int(span["offset_ms"] * scale), BAR_WIDTH - 1)
    length = max(1, round(span["duration_ms"] * scale))
    return Text(" " * begin + "█" * min(length, BAR_WIDTH - begin), style=colour)


def _details(span: dict[str, Any]) -> list[str]:
    attributes = span["attributes"]
    lines = [f"status: {span['status_message']}"] if span["status_message"] else []
    lines += [f"{key}={attributes[key]}" for key in KEY_ATTRIBUTES if key in attributes]
    if span["kind"] == "internal":  # a span of the service's own code: all it says
        lines += [f"{k}={v}" for k, v in attributes.items() if k not in KEY_ATTRIBUTES]
    for event in span["events"]:
        message = event["attributes"].get("exception.message", "")
        lines.append(f"• {event['name']}" + (f": {message}" if message else ""))
    return [line[:100] for line in lines]


def waterfall_view(trace: dict[str, Any]) -> Group:
    """Each span under its caller, its key attributes and events in dim below its name."""
    total = trace["duration_ms"]
    table = Table(title=f"trace {trace['trace_id']}: {total:.1f} ms")
    table.add_column("span")
    table.add_column("start ms", justify="right", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("timeline", width=BAR_WIDTH, no_wrap=True)
    table.add_column("status", no_wrap=True)
    for span in trace["spans"]:
        colour = _colour(span["service"], trace["services"])
        indent = "  " * span["depth"]
        cell = Text(indent)
        cell.append(span["service"], style=f"bold {colour}")
        cell.append(f" {span['name']}")
        if span["kind"] in KIND_MARKS:
            cell.append(f" {KIND_MARKS[span['kind']]}", style="bold")
        for line in _details(span):
            cell.append(f"\n{indent}  {line}", style="dim")
        status = Text("error", style="red") if span["error"] else Text("ok", style="green")
        table.add_row(
            cell,
            f"{span['offset_ms']:.1f}",
            f"{span['duration_ms']:.1f}",
            _bar(span, total, colour),
            status,
        )
    return Group(table, Text(f"services: {', '.join(trace['services'])}"))


#: Fields every log line has, not worth repeating on each.
_BORING = {"service", "trace_id", "span_id", "level", "logger", "timestamp"}


def log_lines(records: list[dict[str, Any]]) -> Group:
    services = sorted({record["service"] for record in records})
    lines = []
    for record in records:
        line = Text(_clock(record["time_ns"]) + " ", style="dim")
        line.append(f"{record['service']:<14}", style=_colour(record["service"], services))
        line.append(f" {record['severity'] or 'INFO':<7} ")
        line.append(record["body"], style="bold")
        fields = {k: v for k, v in record["attributes"].items() if k not in _BORING}
        if fields:
            line.append(" " + " ".join(f"{k}={v}" for k, v in fields.items()), style="dim")
        lines.append(line)
    return Group(*lines)


SEVERITY_STYLES = {"page": "bold red", "ticket": "yellow", "info": "cyan"}


def alerts_table(alerts: list[dict[str, Any]]) -> Table:
    """The alerts Alertmanager delivered, with the runbook to open for each."""
    table = Table(title="alerts delivered by Alertmanager (newest first)")
    for column in ("state", "severity", "service", "alert", "summary", "since", "runbook"):
        table.add_column(column, overflow="fold")
    for alert in alerts:
        started = datetime.fromisoformat(alert["starts_at"]).astimezone()
        state = alert["status"]
        table.add_row(
            f"[red]{state}[/]" if state == "firing" else f"[green]{state}[/]",
            Text(alert["severity"], style=SEVERITY_STYLES.get(alert["severity"], "")),
            alert["service"],
            alert["alertname"],
            alert["summary"],
            started.strftime("%H:%M:%S"),
            alert["runbook_url"],
        )
    return table
