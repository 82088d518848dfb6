"""Lab 13, serverless cold starts, played against the shared native lab: catalog's Lambda
handler run by ``obslab fn invoke`` with its traces sent to the lab's receiver; the
learner's answer (the cold invocation, the init time) read from those traces the way
the README says. Nothing of the shop is touched."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.labs.readme import check, checks_with, follow, readme, resetting, started
from tests.support.backends import wait_for
from tests.support.lab import Lab

pytestmark = pytest.mark.e2e

README = readme("13-serverless-cold-starts")


def traces(lab: Lab, route: str) -> list[dict[str, object]]:
    listed = lab.obslab("traces", "--route", route, "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_no_invocation_or_a_warm_one_fails_with_a_hint(lab: Lab) -> None:
    """Before the function ran, the check fails on its traces; with a warm invocation
    named as the cold one it fails on that, the hint pointing at faas.coldstart; a bad
    answer is refused with exit 2."""
    with started(lab, 13):
        idle = check(lab, 13)
        assert idle.returncode == 1, idle.stdout
        assert "✗ the function ran, its traces in the lab" in idle.stdout
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in idle.stdout.split("Hint:")[1]

        endpoint = f"http://127.0.0.1:{lab.settings.otlp_port}"
        nowhere = lab.obslab("fn", "invoke", "catalog", "get-product", "--repeat", "2")
        assert nowhere.returncode == 0, nowhere.stderr
        assert "✗ the function ran" in check(lab, 13).stdout  # its traces went nowhere
        lab.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        try:
            ran = lab.obslab("fn", "invoke", "catalog", "get-product", "--repeat", "2")
        finally:
            del lab.env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert ran.returncode == 0, ran.stderr
        wait_for(lambda: len(traces(lab, "obslab-catalog")) >= 2, 30, "the invocations' traces")
        warm = min(traces(lab, "obslab-catalog"), key=lambda t: float(str(t["duration_ms"])))
        init = traces(lab, "function.init")[0]  # newest first
        answered = lab.obslab("lab", "answer", "13", str(warm["trace_id"]), "1")
        assert answered.returncode == 0, answered.stdout + answered.stderr
        wrong = check(lab, 13)
        assert "✓ a cold invocation and a warm one" in wrong.stdout, wrong.stdout
        assert "✗ you named a cold invocation's trace" in wrong.stdout
        assert "faas.coldstart" in wrong.stdout.split("Hint:")[1]
        assert "✗ the init phase took what you said" in wrong.stdout
        assert float(str(init["duration_ms"])) > 1  # the 1 ms answered is not it

        refused = lab.obslab("lab", "answer", "13", "not-a-trace", "700")
        assert refused.returncode == 2 and "32 hex digits" in refused.stdout + refused.stderr


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command of lab 13's README runs against the lab; the cold trace is the
    invocation whose trace says faas.coldstart=True, the init time the duration of the
    function.init trace, and the check passes."""
    assert checks_with(README, 13)

    def fill(name: str, transcript: str) -> str:
        if name == "cold trace id":
            # Of the invocations listed, the one whose own trace says it was cold.
            for trace in traces(lab, "obslab-catalog"):
                shown = lab.obslab("trace", str(trace["trace_id"]), "--json").stdout
                if any(s["attributes"].get("faas.coldstart") for s in json.loads(shown)["spans"]):
                    return str(trace["trace_id"])
            pytest.fail(f"no cold invocation among the traces:\n{transcript}")
        assert name == "init ms", name
        init = traces(lab, "function.init")[0]  # newest first: this run's
        return f"{float(str(init['duration_ms'])):.0f}"

    with resetting(lab, 13):
        transcript = follow(lab, README, fill)
        assert re.search(r"cold start.*init \d+ ms", transcript), transcript
        assert transcript.count("warm") >= 2, transcript
        assert "faas.coldstart=True" in transcript, transcript
        wait_for(lambda: check(lab, 13).returncode == 0, 30, "lab 13's check passes")
