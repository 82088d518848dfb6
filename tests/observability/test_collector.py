"""The OpenTelemetry Collector's config: every pipeline complete and consistent, and its
endpoints the ones the compose services and backends really use."""

from __future__ import annotations

import json
import os
import re
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


#: An OTTL replace: its target, then (after replace_all_patterns' "value") the pattern
#: and the replacement, both OTTL string literals.
_REPLACE = re.compile(
    r'replace_(?:all_)?patterns?\((\w+), (?:"value", )?("(?:[^"\\]|\\.)*"), ("(?:[^"\\]|\\.)*")\)'
)


def redactions() -> dict[str, list[tuple[re.Pattern[str], str]]]:
    """Each place transform/redact rewrites (span and log attributes, log bodies) and its
    (pattern, replacement) pairs in order. OTTL unquotes its strings like Go, which for
    these escapes is what JSON does; Python's ASCII mode keeps \\b to RE2's meaning."""
    processor = yaml.safe_load(CONFIG.read_text())["processors"]["transform/redact"]
    places: dict[str, list[tuple[re.Pattern[str], str]]] = {}
    for key in ("trace_statements", "log_statements"):
        for group in processor[key]:
            for statement in group["statements"]:
                match = _REPLACE.fullmatch(statement)
                assert match or not statement.startswith("replace"), statement
                if match:
                    target, pattern, replacement = match.groups()
                    compiled = re.compile(json.loads(pattern), re.ASCII)
                    places.setdefault(f"{group['context']} {target}", []).append(
                        (compiled, json.loads(replacement))
                    )
    return places


def redact(text: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


SECRETS = {
    "a card": "charged 4242424242424242 ok",
    "a card with spaces": "card 4242 4242 4242 4242",
    "a card with dashes": "card=4242-4242-4242-4242",
    "an Amex card": "3782 822463 10005",
    "a bearer token": "Authorization: Bearer abc.def.ghi",
    "a bare JWT": "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl in a log line",
    "an access_token parameter": "GET /api/orders?access_token=opaque-123&page=2",
}
SECRET_PARTS = ["4242", "822463", "abc.def.ghi", "eyJ", "c2lnbmF0dXJl", "opaque-123"]
ORDINARY = [
    "order 5f0c1d2e-1234-4567-8901-234567890123 placed",  # a UUID with all-digit groups
    "trace_id=0af7651916cd43dd8448eb211c80319c",
    "trace 4bf92f3577b34da61234567890123456",  # a long run of digits inside hex
    "GET /api/orders/{order_id}",
    "2026-05-01T12:00:00Z took 1500 ms, 12 items, total 4999 cents",
    "page=2&limit=50",
]


def test_the_redaction_patterns_apply_to_attributes_and_bodies_alike() -> None:
    """Span attributes, log attributes and log bodies are rewritten by the same patterns,
    each in the part of the syntax RE2 (OTTL) and Python share."""
    places = redactions()
    assert set(places) == {"span attributes", "log attributes", "log body"}, places
    assert len({tuple(rules) for rules in places.values()}) == 1, places
    for pattern, _ in places["log body"]:
        # RE2 has no lookaround and no backreferences: Python would accept them, OTTL not.
        assert not re.search(r"\(\?<?[=!]|\\[1-9]", pattern.pattern), pattern.pattern


@pytest.mark.parametrize("kind", SECRETS)
def test_a_card_number_or_a_token_is_replaced(kind: str) -> None:
    """A card number (plain, spaced, dashed), a bearer token, a bare JWT or an
    access_token value no longer appears once the collector's patterns have run."""
    redacted = redact(SECRETS[kind], redactions()["log body"])
    assert "[REDACTED" in redacted, redacted
    assert not any(part in redacted for part in SECRET_PARTS), redacted


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_values_are_left_alone(text: str) -> None:
    """An order id, a trace id, a route, a timestamp or a count passes unchanged."""
    assert redact(text, redactions()["log body"]) == text


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
        (
            "host: 0.0.0.0\n                port: 8888",
            "host: 127.0.0.1\n                port: 8888",
            "scrapes otel-collector:8888",
        ),
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
