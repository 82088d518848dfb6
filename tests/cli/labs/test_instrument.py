"""Lab 5, instrument it yourself, played against the shared native lab: the reviews
service runs uninstrumented, then with obskit's automatic instrumentation, then with
the README's folded answer (a span, an attribute, a counter); a broken file and a
string attribute fail with their hints. ``obslab down`` would stop the service too
(tests/cli/test_down.py checks every port is free)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.cli.labs.readme import (
    blocks,
    check,
    checks_with,
    follow,
    readme,
    resetting,
    run_queries,
    started,
)
from tests.support.backends import wait_for
from tests.support.lab import Lab

pytestmark = pytest.mark.e2e

README = readme("05-instrument-it-yourself")
TRACE_ID = re.compile(r"^x-trace-id: ([0-9a-f]{32})", re.MULTILINE | re.IGNORECASE)


def python_blocks() -> tuple[str, str]:
    """The README's step-3 snippet and its folded answer, the whole file."""
    snippet, answer = [b.code for b in blocks(README) if b.language == "python"]
    return snippet, answer


def copy(lab: Lab) -> Path:
    return lab.settings.path("labs", "05", "reviews.py")


def reviews(lab: Lab, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{lab.settings.reviews_port}{path}", timeout=5)
    except httpx.HTTPError:
        return None


def serves(lab: Lab, text: str) -> bool:
    """Whether the reloaded service's /metrics holds ``text`` (uvicorn reloads on save)."""
    answer = reviews(lab, "/metrics")
    return answer is not None and answer.status_code == 200 and text in answer.text


def edit(lab: Lab, text: str, reloaded: str) -> None:
    """What a learner does in an editor: save the file, wait for uvicorn to reload it."""
    copy(lab).write_text(text)
    wait_for(lambda: serves(lab, reloaded), 60, "the reviews service reloaded")


def test_the_check_fails_with_a_hint_until_the_service_is_instrumented(lab: Lab) -> None:
    """Started and left alone, the service answers but lab 5's check fails on the
    missing trace; a file that does not import stops the service and the check says to
    read its log; a span whose attribute is a string fails on the attribute."""
    with started(lab, 5):
        assert reviews(lab, "/metrics").status_code == 404  # type: ignore[union-attr]
        idle = check(lab, 5)
        assert idle.returncode == 1, idle.stdout
        assert "✓ the reviews service answers" in idle.stdout
        assert "✗ its requests are traced" in idle.stdout and "Hint: Step 3" in idle.stdout

        copy(lab).write_text(copy(lab).read_text() + "\ndef broken(:\n")
        wait_for(lambda: reviews(lab, "/reviews/1") is None, 60, "the reviews service stopped")
        broken = check(lab, 5)
        assert "✗ the reviews service answers" in broken.stdout, broken.stdout
        assert "reviews.log" in broken.stdout and "SyntaxError" in copy_log(lab)

        _, answer = python_blocks()
        as_string = answer.replace('"reviews.count", len(ratings)', '"reviews.count", "3"')
        assert as_string != answer
        edit(lab, as_string, "obslab_review_summaries_total")
        reviews(lab, "/reviews/1")

        def attribute_step_failed() -> bool:
            result = check(lab, 5).stdout
            return "✓ a span reviews.summarise" in result and "✗ the span says" in result

        wait_for(attribute_step_failed, 60, "the check to see the string attribute")


def copy_log(lab: Lab) -> str:
    return lab.settings.path("labs", "05", "reviews.log").read_text()


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 5's README runs against the lab, with the edits of
    steps 3 to 5 made in between as the README gives them: the trace of each call is
    there, the last one with the learner's span and its attribute, and the check
    passes; reset stops the service and empties Prometheus' workshop targets."""
    assert checks_with(README, 5)
    snippet, answer = python_blocks()
    scaffold = 'app = FastAPI(title="reviews")\n'

    def automatic() -> None:
        text = copy(lab).read_text()
        assert scaffold in text
        edit(lab, text.replace(scaffold, snippet), "http_server_request_duration_seconds")

    def manual() -> None:
        edit(lab, answer, "obslab_review_summaries_total")

    def fill(name: str, transcript: str) -> str:
        trace_id = TRACE_ID.findall(transcript)[-1]
        wanted = "reviews.summarise" if name == "new trace id" else '"service": "reviews"'
        wait_for(lambda: wanted in lab.obslab("trace", trace_id, "--json").stdout, 60, "the trace")
        return trace_id

    with resetting(lab, 5):
        transcript = follow(
            lab,
            README,
            fill,
            act={"reviews/2": automatic, "reviews/3": manual},
        )
        assert '{"product_id":1,"reviews":3,"average":4.67}' in transcript
        assert 'http_route="/reviews/{product_id}"} 1.0' in transcript  # one call yet
        assert "reviews.count=4" in transcript  # the waterfall shows the span's attribute
        assert run_queries(lab, README) == 2
        wait_for(lambda: check(lab, 5).returncode == 0, 60, "lab 5's check passes")
    assert reviews(lab, "/reviews/1") is None
    targets = lab.settings.path("prometheus", "targets", "workshop.json")
    assert json.loads(targets.read_text()) == []
