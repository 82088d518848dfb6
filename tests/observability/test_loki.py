"""Loki's config: what Loki 3 would refuse at startup or silently not do (take OTLP logs,
delete old ones), checked without a Loki binary, and the port compose and the collector use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.observability import checks
from tests.observability.checks import COMPOSE_FILE, OBSERVABILITY

CONFIG = OBSERVABILITY / "loki" / "config.yaml"
COLLECTOR = OBSERVABILITY / "otel-collector" / "config.yaml"


@pytest.fixture(scope="module")
def model() -> checks.Model:
    return checks.compose_config(COMPOSE_FILE, {**os.environ, "GRAFANA_ADMIN_PASSWORD": "test"})


def test_the_loki_config_takes_otlp_and_keeps_logs_for_a_while(model: checks.Model) -> None:
    """Schema v13 on the tsdb index with structured metadata (OTLP ingestion), retention
    applied by the compactor with its delete-request store, on the port compose publishes."""
    assert checks.check_loki(CONFIG, model, COLLECTOR) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("schema: v13", "schema: v12", "OTLP logs need schema v13"),
        ("store: tsdb", "store: boltdb-shipper", "OTLP logs need the tsdb index"),
        (
            "allow_structured_metadata: true",
            "allow_structured_metadata: false",
            "OTLP logs are refused",
        ),
        ("period: 24h", "period: 168h", "index period must be 24h"),
        ("retention_enabled: true", "retention_enabled: false", "logs are kept forever"),
        ("  delete_request_store: filesystem\n", "", "Loki refuses retention without one"),
        ("retention_period: 72h", "retention_period: 12h", "at least 24h"),
        ("http_listen_port: 3100", "http_listen_port: 3101", "Loki listens on 3101"),
        ("server:\n", "server: [\n", "not valid YAML"),
    ],
)
def test_a_loki_mistake_is_named(
    model: checks.Model, tmp_path: Path, old: str, new: str, problem: str
) -> None:
    """A schema or index OTLP cannot use, retention that would never delete or that Loki
    refuses, a port nobody sends to, or broken YAML is reported with the file's name."""
    text = CONFIG.read_text()
    assert old in text
    broken = tmp_path / "config.yaml"
    broken.write_text(text.replace(old, new, 1))
    problems = checks.check_loki(broken, model, COLLECTOR)
    assert any(problem in p and "config.yaml" in p for p in problems), problems
