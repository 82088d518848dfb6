"""Writes the Grafana dashboards of ``dashboards/`` (next to this file) from the code below.

    uv run python observability/grafana/generate.py          # write the JSON files
    uv run python observability/grafana/generate.py --check  # exit 1 if they are stale

Grafana provisions the committed JSON (provisioning/dashboards/dashboards.yaml); this
script is how it is made, so that six dashboards share one look: every panel has a
description, a unit and thresholds, every query names a provisioned datasource uid,
and every dashboard marks injected chaos faults (``obslab_chaos_active``) as
annotations. tests/observability/test_dashboards.py fails when the JSON and this script
disagree, and tests/observability/test_dashboards_data.py runs every PromQL query
against the native lab under traffic.

A number a panel shares with an SLO or an alert is read from its source (slo.yaml
through ``obslab.slo``, the alerts' thresholds from prometheus/alerts.yaml), and RED is
plotted from the recording rules the alerts read (prometheus/rules/<profile>/red.yml
and slo.yml; test_dashboards.py checks that both profiles record each name used). A
latency panel with exemplars is the exception: exemplars are kept on the histogram's
own series, never on a recorded one, so it keeps ``histogram_quantile`` over the buckets.

Queries that would have no series until something goes wrong (a retry, a fallback, a
refused call: a counter with labels exists only from its first increment) add
``or <a series that always exists> * 0``, so the panel shows the true answer, 0,
instead of "No data", which a learner cannot tell from a broken panel.

Why plain dicts and not Grafana's typed builder, ``grafana-foundation-sdk`` (PyPI,
Apache-2.0), looked at in its ``1769699590!11.3.0`` build (compose runs Grafana 11.3.1):

=====================  ==========================================================
What                   What we found
=====================  ==========================================================
coverage               every panel type here (timeseries, stat, gauge,
                       state-timeline, logs, rows; table and text too), exemplars,
                       thresholds, data links, overrides, query and custom variables
gaps                   a Prometheus annotation's titleFormat, textFormat, tagKeys,
                       step and useValueForTime are not modelled: the chaos
                       annotation would stay a dict
size                   no dependencies, but 4.9 MB installed: 114 modules, 54,600
                       lines of generated code, "Development Status :: 3 - Alpha"
releases               420 versions on 48 days since 2024-04; each day a batch of
                       one build per Grafana schema, 10.1 to 11.6
versions               ``<build unix time>!<Grafana version>``: the epoch outranks the
                       rest, so an unpinned install gets whichever schema was built
                       last (today 10.1, not 11.6), and ``==11.3.0`` or
                       ``>=11.3,<11.4`` match nothing. Only an exact pin works, and
                       every update is a hand edit of that timestamp
shorter?               no: the overview's p99 panel is a 22-line method chain
                       (before wrapping its query) against 18 lines of ``panel()``
                       below, and the JSON grows: a data link gets 10 keys instead
                       of 2, a variable gets defaults such as skipUrlSync and auto_count
=====================  ==========================================================

Most of this file is what a learner reads (titles, descriptions, PromQL), which no
builder shortens; the plumbing it would replace is the hundred-odd lines of building
blocks below. So the dashboards stay plain dicts, and the committed JSON stays what a
person would write.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from obslab.repo import OBSERVABILITY
from obslab.slo import load as load_slos

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"

#: The SLOs through their one loader, and the alerts by name from their source: a
#: dashboard's red line is where the SLO burns or the alert fires, never a copy.
SLOS = load_slos()
ALERTS_FILE = OBSERVABILITY / "prometheus" / "alerts.yaml"
ALERTS = {alert["alert"]: alert for alert in yaml.safe_load(ALERTS_FILE.read_text())["alerts"]}
#: The latency SLO's threshold, which HighLatencyP99 applies to every service too.
LATENCY_S = SLOS.latency.threshold_s

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
RATE = "[$__rate_interval]"
#: The request-duration histogram every service exports (obskit/_metrics.py).
REQUESTS = "http_server_request_duration_seconds"

Json = dict[str, Any]


# ----------------------------------------------------------------- building blocks


def prom(expr: str, legend: str = "", *, exemplar: bool = False, instant: bool = False) -> Json:
    target: Json = {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}
    if exemplar:
        target["exemplar"] = True
    if instant:
        target["instant"] = True
        target["range"] = False
    return target


def loki(expr: str, legend: str = "") -> Json:
    target: Json = {"datasource": LOKI, "expr": expr}
    if legend:
        target["legendFormat"] = legend
    return target


def steps(*levels: tuple[str, float]) -> Json:
    """Absolute thresholds: green below the first level, then each colour from its level."""
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}]
        + [{"color": colour, "value": whole(value)} for colour, value in levels],
    }


def whole(value: float) -> float:
    """20, not 20.0: a number read from YAML as a float, written as a person would."""
    return int(value) if float(value).is_integer() else value


def green_from(level: float) -> Json:
    """Thresholds of a share that should stay high: red below ``level``, green from it."""
    return {
        "mode": "absolute",
        "steps": [{"color": "red", "value": None}, {"color": "green", "value": level}],
    }


def fires_at(alert: str, after: str = "") -> float:
    """The number ``alert``'s expression (alerts.yaml) compares with: the first comparison
    in it, or the first after the text ``after`` (a guard such as "and more than 0.1
    requests per second" comes second)."""
    expr = ALERTS[alert]["expr"]
    _, seen, rest = expr.partition(after) if after else ("", "", expr)
    found = re.search(r"[<>]=?\s*(\d+(?:\.\d+)?)", rest)
    if found is None or (after and not seen):
        raise ValueError(f"alerts.yaml: {alert} compares with no number after {after!r}")
    return float(found.group(1))


def thresholds_of(name: str, thresholds: Json) -> Json:
    """An override: the series shown as ``name`` gets thresholds of its own."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": "thresholds", "value": thresholds}],
    }


def burn_steps() -> Json:
    """The burn-rate alerts' factors (slo.yaml): orange from a ticket's, red from a page's,
    dark red from the fastest page's."""
    colours = {"ticket": "orange", "page": "red"}
    levels = [
        (colours[b.severity], b.factor) for b in sorted(SLOS.burn_rates, key=lambda b: b.factor)
    ]
    levels[-1] = ("dark-red", levels[-1][1])
    return steps(*levels)


def shortest_shared_window() -> str:
    """The shortest burn-rate window both profiles record an SLI over (slo.yaml's
    ``windows`` and ``lab_windows``): a panel on it works with either profile's rules."""
    production = {window for burn in SLOS.burn_rates for window in burn.windows}
    lab = {window for burn in SLOS.burn_rates for window in burn.lab_windows}
    minutes = {"m": 1, "h": 60, "d": 1440}
    return min(production & lab, key=lambda window: int(window[:-1]) * minutes[window[-1]])


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    width: int = 8,
    height: int = 8,
    thresholds: Json | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    mappings: list[Json] | None = None,
    links: list[Json] | None = None,
    options: Json | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    """A panel; ``thresholds`` are drawn as lines on a time series (dashed: a guide)."""
    datasource = targets[0]["datasource"]
    defaults: Json = {"unit": unit, "thresholds": thresholds or steps()}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if mappings:
        defaults["mappings"] = mappings
    if links:
        defaults["links"] = links
    if kind == "timeseries":
        defaults["custom"] = {
            "thresholdsStyle": {"mode": "dashed" if thresholds else "off"},
            "fillOpacity": 10,
            "showPoints": "never",
        }
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"w": width, "h": height},
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "targets": [target | {"refId": chr(ord("A") + i)} for i, target in enumerate(targets)],
    }


def logs_panel(title: str, description: str, expr: str, height: int = 10) -> Json:
    return {
        "type": "logs",
        "title": title,
        "description": description,
        "datasource": LOKI,
        "gridPos": {"w": 24, "h": height},
        # Newest first, with the labels and metadata (trace_id: a link to the trace).
        "options": {"sortOrder": "Descending", "showLabels": False, "enableLogDetails": True},
        "targets": [loki(expr) | {"refId": "A"}],
    }


def row(title: str) -> Json:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"h": 1}}


def layout(items: list[Json]) -> list[Json]:
    """Number the panels and place them left to right, 24 columns to a line; a row
    starts a new line."""
    x = y = line_height = 0
    for number, item in enumerate(items, start=1):
        item["id"] = number
        grid = item["gridPos"]
        width, height = grid.get("w", 24), grid["h"]
        if item["type"] == "row" or x + width > 24:
            x, y, line_height = 0, y + line_height, 0
        item["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        x, line_height = x + width, max(line_height, height)
        if item["type"] == "row":
            x, y, line_height = 0, y + height, 0
    return items


#: The shop's services (job ``services``), not a service a workshop lab runs beside
#: them for a while (lab 5's, job ``workshop``), whose series outlive it.
SHOP_SERVICES = f'label_values({REQUESTS}_count{{job="services"}}, service)'


def query_variable(name: str, definition: str, *, everything: bool, description: str) -> Json:
    """A variable whose values come from Prometheus (``label_values(metric, label)``).
    With ``everything`` it is multi-valued with an "All" sent as ``.+``, not ``.*``:
    Loki refuses a selector whose every matcher matches an empty label."""
    variable: Json = {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": PROMETHEUS,
        "query": {"query": definition, "refId": name},
        "definition": definition,
        "refresh": 2,  # on time range change: a service started later shows up
        "sort": 1,
        "description": description,
        "includeAll": everything,
        "multi": everything,
    }
    if everything:
        variable["allValue"] = ".+"
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


#: On every dashboard: when a chaos fault was injected, and which (obslab_chaos_active).
CHAOS_ANNOTATION = {
    "name": "Chaos faults",
    "datasource": PROMETHEUS,
    "enable": True,
    "iconColor": "orange",
    "expr": "max by (service, fault) (obslab_chaos_active) > 0",
    "step": "5s",
    "titleFormat": "chaos: {{fault}}",
    "textFormat": "{{fault}} injected into {{service}}",
    "tagKeys": "service,fault",
    "useValueForTime": False,
}


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json] | None = None,
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["obslab"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": variables or []},
        "annotations": {"list": [CHAOS_ANNOTATION]},
        # Every obslab dashboard one click away, keeping the time range and variables.
        "links": [
            {
                "type": "dashboards",
                "tags": ["obslab"],
                "asDropdown": True,
                "title": "obslab dashboards",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": layout(panels),
    }


def to_service_detail() -> list[Json]:
    """A data link from a series to the service detail dashboard of its ``service``."""
    return [
        {
            "title": "Open the service detail of ${__field.labels.service}",
            "url": "/d/obslab-service/service-detail?var-service=${__field.labels.service}"
            "&${__url_time_range}",
        }
    ]


# ----------------------------------------------------------------- the dashboards


def shop_overview() -> Json:
    service = 'service=~"$service"'
    backlog = fires_at("OutboxBacklogGrowing", "sum by (service) (obslab_outbox_backlog)")
    unresolved = fires_at("CheckoutUnresolved")
    panels = [
        row("The shop"),
        panel(
            "stat",
            "Orders placed per minute",
            "Confirmed orders (stock reserved and paid), from the orders service.",
            [prom(f"sum(rate(obslab_orders_placed_total{RATE})) * 60", "placed")],
            unit="short",
            width=5,
        ),
        panel(
            "timeseries",
            "Orders failed per minute, by reason",
            "out_of_stock and card_declined are the customer's; the others are ours. The"
            " counter has a series per reason once one failed; until then `or on ()"
            " vector(0)` (a 0 only when there is nothing else) draws 0.",
            [
                prom(
                    f"sum by (reason) (rate(obslab_orders_failed_total{RATE})) * 60"
                    " or on () vector(0)",
                    "{{reason}}",
                )
            ],
            unit="short",
            width=7,
            minimum=0,
        ),
        panel(
            "timeseries",
            "Edge: requests per second and open connections (nginx)",
            "What reaches the shop's front door, from nginx's stub_status through the"
            " nginx exporter: everything the gateways answer passes here first.",
            [
                prom("sum(rate(nginx_http_requests_total[$__rate_interval]))", "requests/s"),
                prom("sum(nginx_connections_active)", "open connections"),
            ],
            unit="short",
            width=6,
            minimum=0,
        ),
        panel(
            "stat",
            "Outbox backlog",
            "Order events stored and not yet published: it grows when RabbitMQ is down"
            f" (OutboxBacklogGrowing fires above {backlog:g} and growing).",
            [prom("sum(obslab_outbox_backlog)", "events waiting")],
            unit="short",
            width=3,
            thresholds=steps(("orange", 1), ("red", backlog)),
        ),
        panel(
            "stat",
            "Events dead-lettered",
            "Order events rejected to the dead-letter queue in the time range. The counter"
            " has a series only once something was dead-lettered, so `or vector(0)` shows 0"
            " rather than No data.",
            [
                prom(
                    "sum(increase(obslab_events_dead_lettered_total[$__range])) or vector(0)",
                    "dead-lettered",
                )
            ],
            unit="short",
            width=3,
            thresholds=steps(("red", 1)),
        ),
        panel(
            "timeseries",
            "Checkouts not resolved yet: open jobs and the oldest one's age",
            "What the checkout still owes (orders.recovery): resolve (an order still"
            " pending) and compensate (a failed order whose refund or release is not done"
            " yet). A job lives up to the settle time (20 s) in a healthy shop; one that"
            f" ages past {unresolved:g} s fires CheckoutUnresolved: a peer keeps refusing.",
            [
                prom("max by (kind) (obslab_checkout_job_age_seconds)", "oldest {{kind}} (s)"),
                prom("sum by (kind) (obslab_checkout_jobs)", "open {{kind}}"),
            ],
            unit="short",
            width=12,
            minimum=0,
            thresholds=steps(("red", unresolved)),
        ),
        panel(
            "timeseries",
            "Recovered orders and compensations per minute",
            "Pending orders the recovery ended (confirmed or failed), and what compensation"
            " gave back: refunds of charges kept for failed orders, releases of their stock."
            " `or on () vector(0)` draws 0 before the first one.",
            [
                prom(
                    f"sum by (outcome) (rate(obslab_orders_recovered_total{RATE})) * 60"
                    " or on () vector(0)",
                    "recovered {{outcome}}",
                ),
                prom(
                    f"sum by (step) (rate(obslab_compensations_total{RATE})) * 60"
                    " or on () vector(0)",
                    "{{step}}",
                ),
            ],
            unit="short",
            width=12,
            minimum=0,
        ),
        # Rate and errors are the recording rules the alerts read (rules/*/red.yml, the
        # same in both profiles): the line on the panel is the series an alert fires on.
        row("RED per service (the alerts' recording rules)"),
        panel(
            "timeseries",
            "Rate: requests per second",
            "Requests each service answered, health checks included"
            " (service:http_server_requests:rate1m). Click a line for the service detail"
            " dashboard.",
            [prom(f"service:http_server_requests:rate1m{{{service}}}", "{{service}}")],
            unit="reqps",
            minimum=0,
            links=to_service_detail(),
        ),
        panel(
            "timeseries",
            "Errors: share of 5xx answers",
            "5xx answers over all answers: service:http_server_errors:ratio_rate1m, on which"
            f" HighErrorRatio fires above {fires_at('HighErrorRatio'):.0%}. The rule's"
            " `or ... * 0` makes a service with no 5xx show 0 instead of no line at all.",
            [prom(f"service:http_server_errors:ratio_rate1m{{{service}}}", "{{service}}")],
            unit="percentunit",
            minimum=0,
            thresholds=steps(("red", fires_at("HighErrorRatio"))),
            links=to_service_detail(),
        ),
        panel(
            "timeseries",
            "Duration: p99 (click an exemplar for its trace)",
            "The 99th percentile from the histogram's buckets; the dots are exemplars,"
            " requests with their trace id. The dashed line is the latency SLO's"
            f" {LATENCY_S:g} s.",
            [
                # From the buckets, not the p99 rule: exemplars are kept on the
                # histogram's own series, and a recording rule's series carry none.
                prom(
                    f"histogram_quantile(0.99, sum by (service, le) (rate({REQUESTS}_bucket"
                    f"{{{service}}}{RATE})))",
                    "{{service}}",
                    exemplar=True,
                )
            ],
            unit="s",
            minimum=0,
            thresholds=steps(("red", LATENCY_S)),
            links=to_service_detail(),
        ),
        row("Dependencies"),
        panel(
            "timeseries",
            "Calls to other services: p99 by callee",
            "How long each service waits for the services it calls (the client side of a"
            " hop: the callee's own p99 plus the network and any retries).",
            [
                prom(
                    "histogram_quantile(0.99, sum by (service, peer_service, le)"
                    f" (rate(http_client_request_duration_seconds_bucket{{{service}}}{RATE})))",
                    "{{service}} → {{peer_service}}",
                    exemplar=True,
                )
            ],
            unit="s",
            width=12,
            minimum=0,
            thresholds=steps(("red", LATENCY_S)),
        ),
        panel(
            "timeseries",
            "Catalog cache hit ratio",
            "Lookups served from Redis over all lookups (CacheHitRatioCollapsed fires"
            f" below {fires_at('CacheHitRatioCollapsed'):.0%}): every miss is a PostgreSQL"
            " query.",
            [
                prom(
                    f'sum(rate(obslab_cache_requests_total{{result="hit"}}{RATE}))'
                    f" / sum(rate(obslab_cache_requests_total{RATE}))",
                    "hit ratio",
                )
            ],
            unit="percentunit",
            width=6,
            minimum=0,
            maximum=1,
            thresholds=green_from(fires_at("CacheHitRatioCollapsed")),
        ),
        panel(
            "timeseries",
            "Connection pools in use",
            "Connections checked out of each client pool (database, Redis, HTTP) right"
            " now; the infrastructure dashboard sets them against their limits.",
            [
                prom(
                    f'sum by (service, pool) (obslab_pool_connections{{{service}, state="used"}})',
                    "{{service}} {{pool}}",
                )
            ],
            unit="short",
            width=6,
            minimum=0,
        ),
        row("Logs"),
        panel(
            "timeseries",
            "Error log lines per minute, by service",
            "count_over_time of ERROR log lines: a metric made from logs, for the services"
            " that say more in logs than in metrics.",
            [
                loki(
                    'sum by (service_name) (count_over_time({service_name=~"$service"}'
                    ' | severity_text="ERROR" [1m]))',
                    "{{service_name}}",
                )
            ],
            unit="short",
            width=24,
            minimum=0,
        ),
        logs_panel(
            "Log lines of the selected services and levels (each has a link to its trace)",
            "OTLP log records in Loki: service_name is a stream label, severity_text and"
            " trace_id are structured metadata, filtered after the selector.",
            '{service_name=~"$service"} | severity_text=~"$level"',
        ),
    ]
    level = {
        "name": "level",
        "label": "log level",
        "type": "custom",
        "description": "The OTLP severity_text of the log lines shown (Loki keeps it as"
        " structured metadata).",
        "query": "ERROR,WARNING,INFO",
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["ERROR", "WARNING"], "value": ["ERROR", "WARNING"]},
        "options": [],
    }
    return dashboard(
        "obslab-shop-overview",
        "Shop overview",
        "Orders, edge traffic, RED per service, dependencies and logs of the obslab shop;"
        " chaos faults appear as annotations.",
        panels,
        [
            query_variable(
                "service",
                SHOP_SERVICES,
                everything=True,
                description="All is sent as .+ rather than .*: Loki refuses a stream"
                " selector whose every matcher also matches an empty label.",
            ),
            level,
        ],
    )


def service_detail() -> Json:
    service = 'service="$service"'
    panels = [
        # The per-route recording rules (rules/*/red.yml); the status codes and the p99
        # with its exemplars come from the histogram itself.
        row("RED by route"),
        panel(
            "timeseries",
            "Requests per second, by route",
            "Each route template (/products/{product_id}, never a raw path, so the label"
            " stays low-cardinality). unmatched is any path the service has no route for.",
            [prom(f"service_route:http_server_requests:rate1m{{{service}}}", "{{http_route}}")],
            unit="reqps",
            minimum=0,
        ),
        panel(
            "timeseries",
            "Share of 5xx answers, by route",
            "5xx over all answers of each route; the rule's `or ... * 0` shows 0 for a"
            f" route without errors. HighErrorRatio fires at {fires_at('HighErrorRatio'):.0%}"
            " for the whole service.",
            [
                prom(
                    f"service_route:http_server_errors:ratio_rate1m{{{service}}}",
                    "{{http_route}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            thresholds=steps(("red", fires_at("HighErrorRatio"))),
        ),
        panel(
            "timeseries",
            "Answers per second, by status code",
            "4xx are the client's (a declined card is a 402); 5xx are ours.",
            [
                prom(
                    "sum by (http_response_status_code)"
                    f" (rate({REQUESTS}_count{{{service}}}{RATE}))",
                    "{{http_response_status_code}}",
                )
            ],
            unit="reqps",
            minimum=0,
        ),
        panel(
            "timeseries",
            "Latency p50 / p99 by route (dots are exemplars: click one for its trace)",
            "Percentiles from the histogram's buckets, per route. Each dot is an exemplar:"
            " one real request with its trace id, which opens in Jaeger.",
            [
                # The p99 from the buckets, for its exemplars (a recording rule's series
                # carry none); the p50 is the rule.
                prom(
                    "histogram_quantile(0.99, sum by (http_route, le)"
                    f" (rate({REQUESTS}_bucket{{{service}}}{RATE})))",
                    "p99 {{http_route}}",
                    exemplar=True,
                ),
                prom(
                    f"service_route:http_server_request_duration_seconds:p50_1m{{{service}}}",
                    "p50 {{http_route}}",
                ),
            ],
            unit="s",
            width=16,
            minimum=0,
            thresholds=steps(("red", LATENCY_S)),
        ),
        panel(
            "timeseries",
            "Requests in flight",
            "http_server_active_requests: requests being handled right now. It climbs when"
            " something downstream is slow, before the latency percentiles show it.",
            [prom(f"sum(http_server_active_requests{{{service}}})", "in flight")],
            unit="short",
            minimum=0,
        ),
        row("What it depends on"),
        panel(
            "timeseries",
            "Calls to other services per second, by callee and status",
            "The client side of each hop. A service that calls no other (catalog,"
            " inventory, payments) shows one line at 0.",
            [
                prom(
                    "sum by (peer_service, http_response_status_code)"
                    f" (rate(http_client_request_duration_seconds_count{{{service}}}{RATE}))"
                    " or on () vector(0)",
                    "{{peer_service}} {{http_response_status_code}}",
                )
            ],
            unit="reqps",
            width=12,
            minimum=0,
        ),
        panel(
            "timeseries",
            "Connection pools: in use and idle",
            "Each client pool of the service (db, redis, http_<callee>). A pool whose used"
            " connections reach its maximum makes requests queue for a connection.",
            [
                prom(
                    f"sum by (pool, state) (obslab_pool_connections{{{service}}})",
                    "{{pool}} {{state}}",
                ),
                prom(
                    f"sum by (pool) (obslab_pool_max_connections{{{service}}})",
                    "{{pool}} max",
                ),
            ],
            unit="short",
            width=12,
            minimum=0,
        ),
        row("Logs (Loki): each line links to its trace"),
        panel(
            "timeseries",
            "Log lines per minute, by level",
            "A metric made from logs: a burst of ERROR lines often explains a 5xx spike.",
            [
                loki(
                    'sum by (severity_text) (count_over_time({service_name="$service"}'
                    ' | severity_text=~".+" [1m]))',
                    "{{severity_text}}",
                )
            ],
            unit="short",
            width=24,
            height=6,
            minimum=0,
        ),
        logs_panel(
            "Log lines of the service (open one: its trace_id links to the trace)",
            "The service's OTLP log records, filtered by level. Each carries trace_id as"
            " structured metadata, which the Loki datasource turns into a link to Jaeger.",
            '{service_name="$service"} | severity_text=~"$level"',
        ),
    ]
    level = {
        "name": "level",
        "label": "log level",
        "type": "custom",
        "description": "The OTLP severity_text of the log lines shown.",
        "query": "ERROR,WARNING,INFO",
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }
    variable = query_variable(
        "service",
        SHOP_SERVICES,
        everything=False,
        description="One service: every panel is about it.",
    )
    variable["current"] = {"selected": True, "text": "gateway", "value": "gateway"}
    return dashboard(
        "obslab-service",
        "Service detail",
        "One service: RED by route, latency with exemplars, its dependencies and pools,"
        " and its logs linked to their traces.",
        panels,
        [variable, level],
    )


def resilience() -> Json:
    service = 'service=~"$service"'
    #: One series per breaker (each process has its own), always present: 1 for its state.
    breakers = f'max by (service, downstream) (obslab_breaker_state{{{service}, state="closed"}})'
    calls = f"sum by (service, downstream) (rate(obslab_breaker_calls_total{{{service}}}{RATE}))"
    retries = f"sum by (service, downstream) (rate(obslab_retry_attempts_total{{{service}}}{RATE}))"
    storm = fires_at("RetryStorm")
    saturated = fires_at("BulkheadSaturated", "obslab_bulkhead_limit)")
    fallbacks = fires_at("FallbackRateHigh")
    state_colours = [
        {
            "type": "value",
            "options": {
                "0": {"text": "closed", "color": "green", "index": 0},
                "1": {"text": "half open", "color": "yellow", "index": 1},
                "2": {"text": "open", "color": "red", "index": 2},
            },
        }
    ]
    panels = [
        row("Circuit breakers"),
        panel(
            "state-timeline",
            "Breaker state over time, per caller → downstream (and gateway replica)",
            "Each process keeps its own breaker per downstream: closed (calls go through),"
            " open (calls fail fast, CircuitBreakerOpen fires), half open (a few trial calls"
            " decide). Made from obslab_breaker_state: 0 closed, 1 half open, 2 open.",
            [
                prom(
                    "max by (service, replica, downstream) (obslab_breaker_state"
                    f'{{{service}, state="half_open"}}) + 2 * max by (service, replica,'
                    f' downstream) (obslab_breaker_state{{{service}, state="open"}})',
                    "{{service}} {{replica}} → {{downstream}}",
                )
            ],
            unit="none",
            width=24,
            height=7,
            mappings=state_colours,
            thresholds=steps(("yellow", 1), ("red", 2)),
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
        panel(
            "timeseries",
            "Calls through breakers per second, by outcome",
            "successful, failed, slow_* (over the slow-call threshold) and not_permitted:"
            " refused by an open or half-open breaker without calling.",
            [
                prom(
                    "sum by (service, downstream, outcome)"
                    f" (rate(obslab_breaker_calls_total{{{service}}}{RATE}))",
                    "{{service}} → {{downstream}} {{outcome}}",
                )
            ],
            unit="reqps",
            width=12,
            minimum=0,
        ),
        panel(
            "timeseries",
            "Failure and slow-call rate in the breaker's window",
            "The shares the breaker decides on: it opens when either reaches its threshold"
            " (50% by default, OBSLAB_BREAKER_* settings) over enough calls.",
            [
                prom(
                    f"max by (service, downstream) (obslab_breaker_failure_rate{{{service}}})",
                    "{{service}} → {{downstream}} failed",
                ),
                prom(
                    f"max by (service, downstream) (obslab_breaker_slow_call_rate{{{service}}})",
                    "{{service}} → {{downstream}} slow",
                ),
            ],
            unit="percentunit",
            width=12,
            minimum=0,
            maximum=1,
            thresholds=steps(("red", 0.5)),
        ),
        row("Retries"),
        panel(
            "timeseries",
            "Retries per second, by downstream",
            "Attempts after the first. The counter exists only from the first retry, so"
            " `or <every breaker> * 0` draws 0 for the downstreams that never needed one.",
            [prom(f"{retries} or {breakers} * 0", "{{service}} → {{downstream}}")],
            unit="reqps",
            width=12,
            minimum=0,
        ),
        panel(
            "timeseries",
            f"Retries as a share of calls (RetryStorm above {storm:.0%})",
            "What RetryStorm watches: retries over calls. The retry budget caps it at 10%;"
            f" sustained above {storm:.0%}, a downstream fails and retries add load to it.",
            [
                prom(
                    f"({retries} or {calls} * 0) / {calls}",
                    "{{service}} → {{downstream}}",
                )
            ],
            unit="percentunit",
            width=12,
            minimum=0,
            thresholds=steps(("red", storm)),
        ),
        row("Bulkheads, fallbacks and rate limits"),
        panel(
            "timeseries",
            f"Bulkhead slots in use (BulkheadSaturated at {saturated:.0%})",
            "Calls in flight to each downstream over the most allowed: a slow downstream"
            " fills its bulkhead, and the bulkhead keeps it from taking every worker.",
            [
                prom(
                    f"max by (service, downstream) (obslab_bulkhead_in_use{{{service}}}"
                    f" / obslab_bulkhead_limit{{{service}}})",
                    "{{service}} → {{downstream}}",
                )
            ],
            unit="percentunit",
            width=6,
            minimum=0,
            maximum=1,
            thresholds=steps(("orange", 0.7), ("red", saturated)),
        ),
        panel(
            "timeseries",
            "Calls refused by a full bulkhead, per second",
            "Refused without calling (503 bulkhead_full). 0 for every bulkhead until one"
            " fills: the counter exists from the first refusal.",
            [
                prom(
                    "sum by (service, downstream) (rate(obslab_bulkhead_rejected_total"
                    f"{{{service}}}{RATE})) or max by (service, downstream)"
                    f" (obslab_bulkhead_limit{{{service}}}) * 0",
                    "{{service}} → {{downstream}}",
                )
            ],
            unit="reqps",
            width=6,
            minimum=0,
            thresholds=steps(("red", 0.01)),
        ),
        panel(
            "timeseries",
            "Fallbacks served per second, by service",
            "Degraded answers (cached prices, 'notification delayed') instead of the real"
            f" one; FallbackRateHigh fires above {fallbacks:g}/s. By call site: the logs'"
            " fallback.served"
            " events, or sum by (call_site) (rate(obslab_fallbacks_total[1m])) in Explore.",
            [
                prom(
                    f"sum by (service) (rate(obslab_fallbacks_total{{{service}}}{RATE}))"
                    f" or max by (service) (obslab_breaker_state{{{service}}}) * 0",
                    "{{service}}",
                )
            ],
            unit="reqps",
            width=6,
            minimum=0,
            thresholds=steps(("red", fallbacks)),
        ),
        panel(
            "timeseries",
            "Requests refused by the gateway's rate limits (429), by route",
            "Load shed at the door: a client over its limit gets 429 with Retry-After"
            " instead of a slot in the shop. 0 until the first refusal (the counter exists"
            " from then); `or on () vector(0)` draws it.",
            [
                prom(
                    f"sum by (route) (rate(obslab_rate_limited_total{RATE})) or on () vector(0)",
                    "{{route}}",
                )
            ],
            unit="reqps",
            width=6,
            minimum=0,
        ),
    ]
    return dashboard(
        "obslab-resilience",
        "Resilience",
        "Circuit breakers, retries, bulkheads and fallbacks of every service that calls"
        " another: how the shop bends instead of breaking when a dependency fails.",
        panels,
        [
            query_variable(
                "service",
                "label_values(obslab_breaker_state, service)",
                everything=True,
                description="The services that call another (each has breakers).",
            )
        ],
    )


def slo() -> Json:
    selected = 'slo=~"$slo"'
    # Names are the generated recording rules (observability/prometheus/generate.py).
    # Windows differ between profiles (lab: 1m…1h, production: 5m…30d), so the burn
    # rates are selected by name pattern and labelled with their window; the SLI over
    # the budget period comes from the budget left, the same in both profiles.
    burns = (
        'label_replace({__name__=~"slo:error_budget_burn:rate.+", ' + selected + "},"
        ' "window", "$1", "__name__", "slo:error_budget_burn:rate(.+)")'
    )
    period_sli = (
        f"1 - (1 - slo:error_budget:remaining_ratio{{{selected}}})"
        f" * on (slo, service) (1 - slo:objective:ratio{{{selected}}})"
    )
    objectives = {name: SLOS.objective(name).objective for name in ("availability", "latency")}
    pages = " and ".join(f"{b.factor:g}x" for b in SLOS.burn_rates if b.severity == "page")
    tickets = " and ".join(f"{b.factor:g}x" for b in SLOS.burn_rates if b.severity == "ticket")
    window = shortest_shared_window()
    panels = [
        row("Objectives and error budget"),
        panel(
            "stat",
            "Objective",
            "The share of good requests promised over the budget period (slo.yaml):"
            f" {SLOS.window} in production, 1h in the lab profile.",
            [prom(f"slo:objective:ratio{{{selected}}}", "{{slo}}", instant=True)],
            unit="percentunit",
            width=6,
            options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
        ),
        panel(
            "stat",
            "SLI over the budget period",
            "The share of good requests (non-5xx; under the latency threshold) over the"
            " period. Below its objective (red), the budget is spent.",
            [prom(period_sli, "{{slo}}", instant=True)],
            unit="percentunit",
            width=6,
            # Each SLO green from its own objective: one stat, two lines to hold.
            thresholds=green_from(max(objectives.values())),
            overrides=[thresholds_of(name, green_from(o)) for name, o in objectives.items()],
            options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
        ),
        panel(
            "gauge",
            "Error budget remaining",
            "1 - errors / budget over the period: 100% untouched, 0% spent, below 0"
            " overspent (the objective is missed).",
            [prom(f"slo:error_budget:remaining_ratio{{{selected}}}", "{{slo}}", instant=True)],
            unit="percentunit",
            width=12,
            minimum=0,
            maximum=1,
            thresholds={
                "mode": "absolute",
                "steps": [
                    {"color": "red", "value": None},
                    {"color": "orange", "value": 0.25},
                    {"color": "green", "value": 0.5},
                ],
            },
        ),
        row("Burn rates"),
        panel(
            "timeseries",
            f"Burn rate per window (pages above {pages}, tickets above {tickets})",
            "How many times faster than sustainable the budget is spent, over each window"
            " of the multi-window alerts: 1x spends it exactly over the period; a page"
            f" needs both the long and the short window of a pair above its factor ({pages}).",
            [prom(burns, "{{slo}} {{window}}")],
            unit="suffix:x",
            width=16,
            minimum=0,
            thresholds=burn_steps(),
        ),
        panel(
            "timeseries",
            f"SLI over {window} against the objective",
            f"The good share over the last {window} (the shortest window both profiles"
            " record), with the objective: dips below the line are what burns the budget.",
            [
                prom(f"1 - slo:sli_error:ratio_rate{window}{{{selected}}}", "{{slo}} SLI"),
                prom(f"slo:objective:ratio{{{selected}}}", "{{slo}} objective"),
            ],
            unit="percentunit",
            width=8,
            maximum=1,
        ),
    ]
    variable = {
        "name": "slo",
        "label": "SLO",
        "type": "custom",
        "description": "The SLOs of observability/slo.yaml: the public API's availability"
        " (non-5xx) and latency (under the threshold).",
        "query": "availability,latency",
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }
    return dashboard(
        "obslab-slo",
        "SLOs",
        "The public API's SLOs from the generated recording rules: objective, SLI, burn"
        " rates per window (as the multi-window alerts see them) and budget left.",
        panels,
        [variable],
    )


def infrastructure() -> Json:
    dlq = r'queue=~".+\\.dlq"'
    work = r'queue!~".+\\.dlq"'
    queue_backlog = fires_at("QueueBacklogGrowing", "sum by (queue) (rabbitmq_queue_messages_ready")
    outbox_backlog = fires_at("OutboxBacklogGrowing", "sum by (service) (obslab_outbox_backlog)")
    panels = [
        row("PostgreSQL connection pools"),
        panel(
            "timeseries",
            "Database connections in use, by service",
            "Connections checked out of each service's SQLAlchemy pool (pool=db). A pool"
            " that stays at its maximum makes requests wait, then answer 503.",
            [
                prom(
                    'sum by (service) (obslab_pool_connections{pool="db", state="used"})',
                    "{{service}}",
                )
            ],
            unit="short",
            minimum=0,
        ),
        panel(
            "timeseries",
            "Database pool use (in use / maximum)",
            "The share of each pool's maximum in use: above 80% the next burst will queue.",
            [
                prom(
                    'sum by (service) (obslab_pool_connections{pool="db", state="used"})'
                    ' / sum by (service) (obslab_pool_max_connections{pool="db"})',
                    "{{service}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
            thresholds=steps(("orange", 0.8), ("red", 0.95)),
        ),
        panel(
            "timeseries",
            "Every client pool: in use",
            "Database, Redis and HTTP pools of every service side by side.",
            [
                prom(
                    'sum by (service, pool) (obslab_pool_connections{state="used"})',
                    "{{service}} {{pool}}",
                )
            ],
            unit="short",
            minimum=0,
        ),
        row("Redis (catalog's cache)"),
        panel(
            "timeseries",
            "Redis commands per second",
            "From the Redis exporter: every cache lookup and write is a command.",
            [prom(f"sum(rate(redis_commands_processed_total{RATE}))", "commands/s")],
            unit="ops",
            width=6,
            minimum=0,
        ),
        panel(
            "timeseries",
            "Redis memory used",
            "Bytes Redis holds: the cached products and pages (each with a TTL).",
            [prom("sum(redis_memory_used_bytes)", "used")],
            unit="bytes",
            width=6,
            minimum=0,
        ),
        panel(
            "stat",
            "Redis clients connected",
            "Connections from the services' Redis pools (and the exporter).",
            [prom("sum(redis_connected_clients)", "clients")],
            unit="short",
            width=4,
        ),
        panel(
            "timeseries",
            "Cache lookups per second, by result",
            "hit, miss or error (Redis away: catalog reads PostgreSQL instead), as the"
            " catalog counts them.",
            [
                prom(
                    f"sum by (cache, result) (rate(obslab_cache_requests_total{RATE}))",
                    "{{cache}} {{result}}",
                )
            ],
            unit="ops",
            width=8,
            minimum=0,
        ),
        row("RabbitMQ queues and the dead-letter queue"),
        panel(
            "timeseries",
            "Messages ready and unacknowledged, by queue",
            f"Ready: waiting for a consumer (QueueBacklogGrowing fires above {queue_backlog:g}"
            " and growing). Unacked: delivered, being handled.",
            [
                prom(
                    f"sum by (queue) (rabbitmq_queue_messages_ready{{{work}}})",
                    "{{queue}} ready",
                ),
                prom(
                    f"sum by (queue) (rabbitmq_queue_messages_unacked{{{work}}})",
                    "{{queue}} unacked",
                ),
            ],
            unit="short",
            minimum=0,
            thresholds=steps(("red", queue_backlog)),
        ),
        panel(
            "stat",
            "Dead-letter queue depth",
            "Messages the consumer gave up on (DeadLettersPresent fires on any): each needs"
            " a person to look at it.",
            [prom(f"sum by (queue) (rabbitmq_queue_messages{{{dlq}}})", "{{queue}}")],
            unit="short",
            width=4,
            thresholds=steps(("red", 1)),
        ),
        panel(
            "timeseries",
            "Messages published per second, and consumers",
            "What the outbox relay publishes into each queue, and how many consumers read it"
            " (0 consumers: nothing drains the queue).",
            [
                prom(
                    "sum by (queue) (rate(rabbitmq_queue_messages_published_total"
                    f"{{{work}}}{RATE}))",
                    "{{queue}} published/s",
                ),
                prom(f"sum by (queue) (rabbitmq_queue_consumers{{{work}}})", "{{queue}} consumers"),
            ],
            unit="short",
            width=12,
            minimum=0,
        ),
        row("Outbox and notifications"),
        panel(
            "timeseries",
            "Outbox backlog and events published per second",
            "Order events committed with their order and not yet published: 0 or close to"
            " it while RabbitMQ is up (OutboxBacklogGrowing fires above"
            f" {outbox_backlog:g} and growing).",
            [
                prom("sum by (service) (obslab_outbox_backlog)", "{{service}} backlog"),
                prom(
                    f"sum by (service) (rate(obslab_outbox_published_total{RATE}))",
                    "{{service}} published/s",
                ),
            ],
            unit="short",
            width=12,
            minimum=0,
            thresholds=steps(("red", outbox_backlog)),
        ),
        panel(
            "timeseries",
            "Events consumed, retried and dead-lettered per second",
            "The notifications worker's side of the queue. Retried and dead-lettered exist"
            " from their first event, hence `or vector(0)`.",
            [
                prom(f"sum(rate(obslab_events_consumed_total{RATE}))", "consumed"),
                prom(f"sum(rate(obslab_events_retried_total{RATE})) or vector(0)", "retried"),
                prom(
                    f"sum(rate(obslab_events_dead_lettered_total{RATE})) or vector(0)",
                    "dead-lettered",
                ),
            ],
            unit="ops",
            width=12,
            minimum=0,
        ),
    ]
    return dashboard(
        "obslab-infrastructure",
        "Infrastructure",
        "What the services stand on: PostgreSQL pools, Redis, RabbitMQ queues and the"
        " dead-letter queue, the transactional outbox.",
        panels,
    )


def load_test() -> Json:
    run = 'testid=~"$testid"'
    gateway = 'service="gateway"'
    #: The share of requests a load test may fail (slo.yaml's availability budget), and
    #: so the share of its checks that must hold: k6's thresholds (load/lib/thresholds.js).
    may_fail = SLOS.for_k6()["max_error_rate"]
    panels = [
        row("k6: the load it sent (Prometheus remote write, obslab load ... --prometheus)"),
        panel(
            "timeseries",
            "k6: virtual users",
            "Concurrent virtual users of the run: the load profile of the scenario.",
            [prom(f"sum by (testid) (k6_vus{{{run}}})", "{{testid}}")],
            unit="short",
            width=6,
            minimum=0,
        ),
        panel(
            "timeseries",
            "k6: requests per second, by journey step",
            "Requests k6 sent, tagged with the journey step (browse, view_product,"
            " place_order, poll_order) whose SLO is its threshold.",
            [
                prom(f"sum by (step) (rate(k6_http_reqs_total{{{run}}}{RATE}))", "{{step}}"),
            ],
            unit="reqps",
            width=9,
            minimum=0,
        ),
        panel(
            "timeseries",
            "k6: p99 duration seen by the client, by step",
            "As k6 measured it, network and nginx included: compare with the gateway's own"
            f" p99 below. The dashed line is the latency SLO's threshold, {LATENCY_S:g} s.",
            [
                prom(f"max by (step) (k6_http_req_duration_p99{{{run}}})", "{{step}}"),
            ],
            unit="s",
            width=9,
            minimum=0,
            thresholds=steps(("red", LATENCY_S)),
        ),
        panel(
            "timeseries",
            "k6: share of failed requests",
            "Requests k6 counted as failed (an unexpected status, or no answer); the run"
            f" fails its threshold at {may_fail:.1%}, the availability SLO's budget.",
            [prom(f"max by (testid) (k6_http_req_failed_rate{{{run}}})", "{{testid}}")],
            unit="percentunit",
            width=6,
            minimum=0,
            thresholds=steps(("red", may_fail)),
        ),
        panel(
            "timeseries",
            "k6: checks passed",
            "The share of k6 checks (status, body) that held; the run fails its threshold"
            f" below {1 - may_fail:.1%}.",
            [prom(f"min by (testid) (k6_checks_rate{{{run}}})", "{{testid}}")],
            unit="percentunit",
            width=6,
            minimum=0,
            maximum=1,
            thresholds=green_from(round(1 - may_fail, 9)),
        ),
        panel(
            "timeseries",
            "k6: iterations per second",
            "Completed journeys (one shopper's visit) per second.",
            [prom(f"sum(rate(k6_iterations_total{{{run}}}{RATE}))", "iterations/s")],
            unit="ops",
            width=12,
            minimum=0,
        ),
        row("The shop's answer to it"),
        panel(
            "timeseries",
            "Edge (nginx) and gateways: requests per second",
            "The same load as the shop saw it: nginx in front, then the two gateway replicas"
            " (their /api routes only, as the SLO counts them).",
            [
                prom(f"sum(rate(nginx_http_requests_total{RATE}))", "nginx"),
                # From the histogram: the recording rules sum the replicas together.
                prom(
                    f"sum by (replica) (rate({REQUESTS}_count{{{gateway},"
                    f' http_route=~"/api/.*"}}{RATE}))',
                    "{{replica}}",
                ),
            ],
            unit="reqps",
            minimum=0,
        ),
        panel(
            "timeseries",
            "Gateway p99 by route",
            "The server side of what k6 measured above: the difference is nginx and the network.",
            [
                # From the buckets, for the exemplars a recording rule's series lack.
                prom(
                    "histogram_quantile(0.99, sum by (http_route, le) (rate("
                    f'{REQUESTS}_bucket{{{gateway}, http_route=~"/api/.*"}}{RATE})))',
                    "{{http_route}}",
                    exemplar=True,
                )
            ],
            unit="s",
            minimum=0,
            thresholds=steps(("red", LATENCY_S)),
        ),
        panel(
            "timeseries",
            "Share of 5xx answers, by service",
            "Where errors start under load: the service whose line rises first is the"
            " bottleneck. The series HighErrorRatio fires on"
            f" (service:http_server_errors:ratio_rate1m, above {fires_at('HighErrorRatio'):.0%}).",
            [prom("service:http_server_errors:ratio_rate1m", "{{service}}")],
            unit="percentunit",
            minimum=0,
            thresholds=steps(("red", fires_at("HighErrorRatio"))),
        ),
    ]
    testid = query_variable(
        "testid",
        "label_values(k6_vus, testid)",
        everything=True,
        description="One id per `obslab load` run (scenario and start time). All is .*,"
        " which also matches a run without the tag (compose's k6 service sets none).",
    )
    testid["allValue"] = ".*"  # no Loki query here: an empty-matching selector is fine
    return dashboard(
        "obslab-load",
        "Load test",
        "A k6 run (obslab load SCENARIO --prometheus) side by side with the shop's own"
        " metrics: the load sent, and how the edge and services answered it.",
        panels,
        [
            testid,
        ],
    )


DASHBOARD_FILES = {
    "shop-overview.json": shop_overview,
    "service-detail.json": service_detail,
    "resilience.json": resilience,
    "slo.json": slo,
    "infrastructure.json": infrastructure,
    "load-test.json": load_test,
}


def render() -> dict[str, str]:
    """Each dashboard file's content, as committed."""
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARD_FILES.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = DASHBOARDS / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
