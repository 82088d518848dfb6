"""Lab 12, game day, played against the shared native lab on a short game: failing
payments, then slow payments (the two experiments `make test` proves trip their
alerts), with a short calm before each. A learner who stays idle fails with a hint
that names no service, and reset rolls the game back; one who follows the README round
by round passes, scored for each round.

The learner's diagnosis (step 4) is a person reading runbooks and traces: the test
plays one who got it right by taking the round's service from the game's history, the
one thing it knows that a learner does not. Everything else is the README's commands."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.cli.labs.readme import PLACEHOLDER, check, checks_with, readme, run, sh_blocks
from tests.support.backends import wait_for
from tests.support.lab import Lab

pytestmark = pytest.mark.e2e

README = readme("12-game-day")
SILENCE_ID = re.compile(r"^[0-9a-f-]{36}$", re.MULTILINE)
GAME = {
    "OBSLAB_GAMEDAY_EXPERIMENTS": '["failing-payments", "slow-payments"]',
    "OBSLAB_GAMEDAY_CALM_S": "20",
}


def history(lab: Lab) -> dict[str, Any]:
    try:
        return dict(json.loads(lab.settings.path("labs", "12", "history.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def begun(lab: Lab, number: int) -> dict[str, Any]:
    """Round ``number`` once its fault is in."""
    wait_for(lambda: len(history(lab).get("rounds", [])) >= number, 120, f"round {number}")
    entry: dict[str, Any] = history(lab)["rounds"][number - 1]
    assert "error" not in entry, entry
    return entry


def seconds(text: str) -> float:
    """An RFC 3339 time as Alertmanager writes it (nanoseconds cut to micro)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def firing(lab: Lab) -> list[dict[str, Any]]:
    shown = lab.obslab("alerts", "--firing", "--json")
    assert shown.returncode == 0, shown.stderr
    return [a for a in json.loads(shown.stdout) if a["alertname"] != "ChaosFaultActive"]


def pages(lab: Lab, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The alerts that began firing since the round's fault did."""
    return [a for a in firing(lab) if seconds(a["starts_at"]) >= entry["injected_at"]]


def silences(lab: Lab) -> list[dict[str, Any]]:
    answer = httpx.get(f"http://127.0.0.1:{lab.settings.alertmanager_port}/api/v2/silences")
    return [s for s in answer.json() if s["status"]["state"] == "active"]


def test_an_idle_learner_fails_with_a_hint_and_reset_rolls_the_game_back(lab: Lab) -> None:
    """Started, the game silences ChaosFaultActive and injects its first fault; the
    check fails on that round's detection with a hint that names no service; reset
    stops the scheduler, removes the fault and expires the game's silence."""
    game = {"OBSLAB_GAMEDAY_EXPERIMENTS": '["failing-payments"]', "OBSLAB_GAMEDAY_CALM_S": "1"}
    try:
        run(lab, "uv run obslab lab start 12", env=game)
        assert [s["createdBy"] for s in silences(lab)] == ["obslab lab 12"]
        begun(lab, 1)
        idle = check(lab, 12)
        assert idle.returncode == 1, idle.stdout
        assert "✗ round 1 (a fault at" in idle.stdout and "detected" in idle.stdout
        assert "Hint:" in idle.stdout and "payments" not in idle.stdout
        pid = int(lab.settings.path("labs", "12", "gameday.pid").read_text())
    finally:
        lab.obslab("lab", "reset", "12")
    faults = lab.obslab("chaos", "list", "payments", "--json")
    assert faults.returncode == 0 and json.loads(faults.stdout) == [], faults.stdout
    assert silences(lab) == []
    from obslab.native.process import group_alive

    assert not group_alive(pid)


def test_a_learner_who_follows_the_readme_round_by_round_passes(lab: Lab) -> None:
    """The README's start, then for each round its steps 2 to 6 (the alert acknowledged
    with amtool, the runbook read, the fault cleared on the right service, the silence
    expired): the check passes, with a time to detect and a time to mitigate for both
    rounds."""
    assert checks_with(README, 12)
    start, *steps, _check = sh_blocks(README)
    assert "lab start 12" in start and "lab check 12" in _check
    try:
        run(lab, start, env=GAME)
        for number in (1, 2):
            entry = begun(lab, number)
            transcript, values = "", {}

            def fill(name: str, transcript: str, entry: dict[str, Any] = entry) -> str:
                if name == "faulty service":
                    return str(entry["service"])
                if name == "silence id":  # what `amtool silence add` printed
                    return SILENCE_ID.findall(transcript)[-1]
                assert name == "alert name", name
                wait_for(lambda: pages(lab, entry), 120, "a page")
                return str(pages(lab, entry)[0]["alertname"])

            for code in steps:
                for name in PLACEHOLDER.findall(code):
                    values.setdefault(name, fill(name, transcript))
                for name, value in values.items():
                    code = code.replace(f"<{name}>", value)
                transcript += run(lab, code)
            assert values["alert name"] != "ChaosFaultActive"
            print(number, entry["kind"], sorted({a["alertname"] for a in pages(lab, entry)}))

        wait_for(lambda: history(lab).get("finished_at") is not None, 60, "the game's end")
        passed = check(lab, 12)
        assert passed.returncode == 0, passed.stdout
        for number in (1, 2):
            assert re.search(rf"✓ round {number} .*: detected \(in \d+ s\)", passed.stdout)
            assert re.search(rf"✓ round {number} .*: mitigated \(in \d+ s\)", passed.stdout)
        assert "time to detect" in passed.stdout
    finally:
        lab.obslab("lab", "reset", "12")
    assert silences(lab) == []
