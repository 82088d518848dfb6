"""The OpenTelemetry Collector's config: every pipeline complete and consistent, and its
endpoints the ones the compose services and backends really use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.observability import checks
from tests.observability.checks import COMPOSE_FILE, OBSERVABILITY

CONFIG = OBSERVABILITY / "otel-collector" / "config.yaml"


@pytest.fixture(scope="module")
def model() -> checks.Model:
    return checks.compose_config(COMPOSE_FILE, {**os.environ, "GRAFANA_ADMIN_PASSWORD": "test"})


def test_the_collector_config_is_consistent(model: checks.Model) -> None:
    """Every component used is defined and every one defined is used, with known types,
    connectors on both sides, and ports that match what the services export to."""
    assert checks.check_collector(CONFIG, model) == []


def test_the_collector_redacts_cards_and_tokens_in_traces_and_logs() -> None:
    """The redaction step is in both the traces and the logs pipelines, before export."""
    config = yaml.safe_load(CONFIG.read_text())
    for signal in ("traces", "logs"):
        processors = config["service"]["pipelines"][signal]["processors"]
        assert "transform/redact" in processors, signal
        assert processors[-1] == "batch", signal


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "  batch:\n    send_batch_size",
            "  batching:\n    send_batch_size",
            "pipeline traces uses processor batch, which is not defined",
        ),
        (
            "\nconnectors:\n",
            "\nconnectors:\n  count:\n",
            "connector count is defined but never used",
        ),
        ("otlp/jaeger:\n    endpoint", "zipkin/jaeger:\n    endpoint", "type 'zipkin/jaeger'"),
        ("endpoint: 0.0.0.0:4318", "endpoint: 0.0.0.0:4319", "the collector's OTLP/HTTP receiver"),
        ("endpoint: jaeger:4317", "endpoint: tempo:4317", "exporter otlp/jaeger sends to tempo"),
        (
            "exporters: [otlp/jaeger, spanmetrics]",
            "exporters: [otlp/jaeger]",
            "connector spanmetrics",
        ),
        ("processors: [memory_limiter, batch]", "processors: [batch, memory_limiter]", "first"),
        ("receivers:\n  # Both", "receivers: [\n  # Both", "not valid YAML"),
    ],
)
def test_a_collector_mistake_is_named(
    model: checks.Model, tmp_path: Path, old: str, new: str, problem: str
) -> None:
    """An undefined, unused or unknown component, a wrong port or host, a one-sided
    connector or broken YAML is reported with the file's name."""
    text = CONFIG.read_text()
    assert old in text
    broken = tmp_path / "config.yaml"
    broken.write_text(text.replace(old, new, 1))
    problems = checks.check_collector(broken, model)
    assert any(problem in p and "config.yaml" in p for p in problems), problems
