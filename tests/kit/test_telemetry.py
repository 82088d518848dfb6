"""When the kit exports telemetry, and where to."""

import pytest

from obskit._telemetry import _endpoint_for


@pytest.fixture(autouse=True)
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_LOGS_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)


def test_nothing_is_exported_without_an_endpoint() -> None:
    """With no OTLP endpoint set there is no exporter, so nothing retries or warns."""
    assert _endpoint_for("traces") is None
    assert _endpoint_for("logs") is None


def test_the_standard_variables_choose_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The general endpoint serves every signal; a per-signal one wins for its signal."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://jaeger:4318/v1/traces")
    assert _endpoint_for("traces") == "http://jaeger:4318/v1/traces"
    assert _endpoint_for("logs") == "http://collector:4318"


def test_an_exporter_set_to_none_turns_its_signal_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_LOGS_EXPORTER=none keeps logs local even with an endpoint."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    assert _endpoint_for("logs") is None
    assert _endpoint_for("traces") == "http://collector:4318"
