"""serverless/template.yaml (AWS SAM): valid for cfn-lint, and in agreement with the
services it deploys: their handler modules, their settings, the recorded events and
the collector layer's configuration. Nothing here reaches AWS."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint_all
from cfnlint.decode import decode_str

from catalog.settings import Settings as CatalogSettings
from payments.settings import Settings as PaymentsSettings

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "serverless"
TEXT = (FOLDER / "template.yaml").read_text()
TEMPLATE, _ = decode_str(TEXT)
COLLECTOR = yaml.safe_load((FOLDER / "collector.yaml").read_text())
SETTINGS = {"catalog": CatalogSettings, "payments": PaymentsSettings}
FUNCTIONS = {"catalog": "CatalogFunction", "payments": "PaymentsFunction"}
#: The OpenTelemetry SDK's variables the template may set (obskit._telemetry reads them).
OTEL_VARIABLES = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
}
#: The most an HTTP API waits for a Lambda integration, in seconds.
HTTP_API_TIMEOUT_S = 30


def function(service: str) -> dict[str, Any]:
    properties: dict[str, Any] = TEMPLATE["Resources"][FUNCTIONS[service]]["Properties"]
    return properties


def environment(service: str) -> dict[str, Any]:
    """The function's variables: the Globals' merged with its own, as SAM merges them."""
    merged: dict[str, Any] = {
        **TEMPLATE["Globals"]["Function"]["Environment"]["Variables"],
        **function(service)["Environment"]["Variables"],
    }
    return merged


def resolved(service: str) -> dict[str, str]:
    """The environment with each parameter given a value its constraints allow."""
    values = {}
    for name, value in environment(service).items():
        if isinstance(value, dict) and "Ref" in value:
            parameter = TEMPLATE["Parameters"][value["Ref"]]
            value = secrets.token_hex(max(32, parameter.get("MinLength", 0)))
            if name.endswith("_URL"):
                value = "postgresql://u:p@db:5432/x" if "DATABASE" in name else "redis://c:6379/0"
        values[name] = str(value)
    return values


def test_cfn_lint_finds_nothing_wrong() -> None:
    """cfn-lint (with the SAM transform) reports no error and no warning."""
    problems = [m for m in lint_all(TEXT) if m.rule.id[0] in "EW"]
    assert problems == []


@pytest.mark.parametrize("service", FUNCTIONS)
def test_handler_is_the_services_function_module(service: str) -> None:
    """Each function's handler is ``<service>.function.handler``, made by obskit."""
    properties = function(service)
    module, _, attribute = properties["Handler"].rpartition(".")
    path = REPO / "services" / service / "src" / module.replace(".", "/")
    source = path.with_suffix(".py").read_text()
    assert re.search(rf"^{attribute} = obskit\.LambdaFunction\(", source, re.MULTILINE)
    # obskit names the invocation span after the function: the name Lambda gives it.
    assert properties["FunctionName"] == f"obslab-{service}"


@pytest.mark.parametrize("service", FUNCTIONS)
def test_every_variable_is_read_by_someone(service: str) -> None:
    """Each variable is a setting of the service, an OpenTelemetry one, or the collector's."""
    fields = set(SETTINGS[service].model_fields)
    collector_reads = set(re.findall(r"\$\{env:(\w+)\}", (FOLDER / "collector.yaml").read_text()))
    for name in environment(service):
        if name.startswith("OBSLAB_"):
            assert name.removeprefix("OBSLAB_").lower() in fields, name
        elif name.startswith("OTEL_"):
            assert name in OTEL_VARIABLES, name
        elif name != "OPENTELEMETRY_COLLECTOR_CONFIG_URI":  # the layer's own
            assert name in collector_reads, name


@pytest.mark.parametrize("service", FUNCTIONS)
def test_environment_makes_valid_production_settings(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template's variables make the service's settings, in production mode, with
    one database connection per environment and a budget the timeout allows."""
    for name, value in resolved(service).items():
        monkeypatch.setenv(name, value)
    settings = SETTINGS[service]()
    assert settings.environment == "production"
    assert (settings.db_pool_size, settings.db_max_overflow) == (1, 0)
    timeout = TEMPLATE["Globals"]["Function"]["Timeout"]
    # A second to answer and to flush telemetry after the budget is spent.
    assert settings.request_budget_s + 1 <= timeout <= HTTP_API_TIMEOUT_S


def test_telemetry_goes_to_the_collector_layer() -> None:
    """The functions export OTLP where the collector layer listens; the layer matches
    the functions' architecture, and the build puts its configuration where it is read."""
    functions = TEMPLATE["Globals"]["Function"]
    variables = functions["Environment"]["Variables"]
    listening = COLLECTOR["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{listening}"
    (layer,) = functions["Layers"]
    assert ":layer:opentelemetry-collector-amd64-" in layer["Fn::Sub"]
    assert functions["Architectures"] == ["x86_64"]
    config = variables["OPENTELEMETRY_COLLECTOR_CONFIG_URI"]
    assert config == "/var/task/collector.yaml"  # the package's root
    assert "cp collector.yaml $(ARTIFACTS_DIR)/" in (FOLDER / "Makefile").read_text()
    pipelines = COLLECTOR["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    assert all(p["processors"] == ["decouple"] for p in pipelines.values())


@pytest.mark.parametrize("service", FUNCTIONS)
def test_recorded_events_are_what_the_route_sends(service: str) -> None:
    """The recorded events come from the route the template declares, payload 2.0."""
    (route,) = function(service)["Events"].values()
    route_key = f"{route['Properties']['Method']} {route['Properties']['Path']}"
    events = sorted((REPO / "services" / service / "events").glob("*.json"))
    assert events
    for path in events:
        event = json.loads(path.read_text())
        assert (event["version"], event["routeKey"]) == ("2.0", route_key), path.name
