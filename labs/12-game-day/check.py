"""Lab 12, game day: ``start`` plans a few rounds, each one of the chaos experiments of
``chaos/experiments/`` that injects a single fault (a failing or slow payments, a cache
outage, a slow worker …), picked at random, and leaves a scheduler running
(this file run as a script): for each round it places the experiment's orders,
waits a calm while, injects the fault and watches it until it is gone, cleared by the
learner or expired. The learner is on call: a page arrives (``obslab alerts``), they
acknowledge it with a silence, follow its runbook to the faulty service and roll the
fault back.

The check scores each round from the alert and chaos history: **time to detect**, from
the fault to the learner's silence of an alert that fired during the round (Prometheus'
``ALERTS``), and **time to mitigate**, from the fault to its end, which must come
before it expires. ``ChaosFaultActive`` would name the fault: the game silences it in
Alertmanager while it runs, so the learner finds the fault from its symptoms.

The plan and the history are files in the lab's folder (``plan.json``, ``history.json``,
written by the scheduler after each event), never shown before a round begins.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from statistics import mean
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from obslab.chaos.experiment import FaultStep, Load, Shopper, load_experiment
from obslab.chaos.faults import Admin, ChaosError
from obslab.labkit import background
from obslab.labkit.base import Context, Exercise, LabError, Step
from obslab.native.lab import LabSettings
from obslab.native.process import Process
from obslab.repo import EXPERIMENTS, ROOT

#: Who the game's own silence is by: any other silence is the learner's.
GAME = "obslab lab 12"
#: An acknowledgement that comes this long after the fault ended still counts.
LATE_ACK_S = 60


class GameDaySettings(BaseSettings):
    """How long a game is; ``OBSLAB_GAMEDAY_ROUNDS=2 uv run obslab lab start 12``."""

    model_config = SettingsConfigDict(env_prefix="OBSLAB_GAMEDAY_", extra="ignore")

    #: Faults, one after the other (each a different experiment).
    rounds: int = Field(default=3, ge=1, le=6)
    #: Seconds of calm before each fault, on average (a random 0.5 to 1.5 times this).
    calm_s: float = Field(default=60, ge=1, le=600)
    #: How long a fault lasts when nobody rolls it back.
    fault_s: int = Field(default=300, ge=60, le=1800)
    #: These experiments, in this order, instead of a random draw (an instructor's
    #: choice, and the tests'): ``OBSLAB_GAMEDAY_EXPERIMENTS='["failing-payments"]'``.
    experiments: tuple[str, ...] = ()


def playable() -> dict[str, FaultStep]:
    """The experiments a round can be: one fault, no lab action (no kill)."""
    steps = {}
    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        method = load_experiment(path).method
        if len(method) == 1 and isinstance(method[0], FaultStep):
            steps[path.stem] = method[0]
    return steps


def plan(settings: GameDaySettings) -> dict[str, Any]:
    steps = playable()
    unknown = [name for name in settings.experiments if name not in steps]
    if unknown:
        raise LabError(
            f"Not a single-fault experiment: {', '.join(unknown)}; one of {', '.join(steps)}."
        )
    names = list(settings.experiments) or random.sample(
        sorted(steps), min(settings.rounds, len(steps))
    )
    return {
        "fault_s": settings.fault_s,
        "rounds": [
            {"experiment": name, "calm_s": round(settings.calm_s * random.uniform(0.5, 1.5), 1)}
            for name in names
        ],
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write(path: Path, value: dict[str, Any]) -> None:
    """Whole or not at all: the check may read it at any moment."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value, indent=2))
    partial.replace(path)


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%H:%M:%S")


# ---------------------------------------------------------------------- the scheduler


def play(folder: Path) -> None:
    """Play the plan in ``folder``: every round's load, calm, fault, and its end."""
    settings = LabSettings()
    game = _read(folder / "plan.json")
    history: dict[str, Any] = {"rounds": [], "finished_at": None}
    path = folder / "history.json"
    _write(path, history)
    admin = Admin.of_lab(settings)
    steps = playable()
    for planned in game["rounds"]:
        experiment = load_experiment(EXPERIMENTS / f"{planned['experiment']}.yaml")
        step = steps[planned["experiment"]]
        shopper = Shopper(f"http://127.0.0.1:{settings.edge_port}", experiment.load or Load())
        shopper.start()
        time.sleep(planned["calm_s"])
        entry: dict[str, Any] = {"service": step.service, "kind": step.kind}
        try:
            fault = admin.inject(step.service, {**step.body(), "duration_s": game["fault_s"]})
        except ChaosError as exc:
            entry["error"] = str(exc)
            history["rounds"].append(entry)
            _write(path, history)
            shopper.stop()
            continue
        entry.update(fault_id=fault["id"], injected_at=time.time(), gone_at=None, expired=False)
        history["rounds"].append(entry)
        _write(path, history)
        print(f"round {len(history['rounds'])}: {step.service} {step.kind}", flush=True)
        while _active(admin, step.service, fault["id"]):
            time.sleep(1)
        entry["gone_at"] = time.time()
        entry["expired"] = entry["gone_at"] >= entry["injected_at"] + game["fault_s"] - 2
        _write(path, history)
        shopper.stop()
    history["finished_at"] = time.time()
    _write(path, history)
    admin.close()


def _active(admin: Admin, service: str, fault_id: str) -> bool:
    try:
        return any(fault["id"] == fault_id for fault in admin.faults(service))
    except ChaosError:
        return True  # a replica restarting: ask again in a second


# ---------------------------------------------------------------------- the lab


class GameDay(Exercise):
    title = "Game day: random faults, detected and mitigated"
    minutes = 40

    def start(self, context: Context) -> list[str]:
        settings = GameDaySettings()
        game = plan(settings)
        folder = context.folder()
        context.stack.prometheus.value("vector(1)")  # Unreachable when the lab is down
        # Silenced for longer than the game can last: every round calm, then expired.
        longest = sum(r["calm_s"] + game["fault_s"] for r in game["rounds"]) + 600
        context.record.setup = {
            "silence": context.stack.alertmanager.silence(
                "ChaosFaultActive",
                longest,
                GAME,
                "Game day: find each fault from its symptoms, not from the chaos alert.",
            )
        }
        _write(folder / "plan.json", game)
        (folder / "history.json").unlink(missing_ok=True)
        background.spawn(
            context,
            Process(
                name="gameday",
                argv=[sys.executable, __file__, str(folder)],
                env={
                    "OBSLAB_LAB_RUNTIME_DIR": str(context.settings.path()),
                    "OBSLAB_REPO": str(ROOT),
                },
                health="",
                start_timeout=30,
            ),
            ready=lambda: (folder / "history.json").exists(),
        )
        rounds = len(game["rounds"])
        return [
            f"Game day: {rounds} faults, one after the other, the first within"
            f" {game['rounds'][0]['calm_s']:.0f} s. Each lasts"
            f" {game['fault_s'] // 60} minutes unless you roll it back. You are on call:"
            " `uv run obslab alerts --firing`."
        ]

    def check(self, context: Context) -> list[Step]:
        folder = context.folder()
        game, history = _read(folder / "plan.json"), _read(folder / "history.json")
        if not history:
            return [
                Step(
                    "the game day runs",
                    False,
                    "Its scheduler did not start: see .obslab/run/labs/12/gameday.log;"
                    " `uv run obslab lab start 12` begins a new game.",
                )
            ]
        silences = [
            s
            for s in context.stack.alertmanager.silences()
            if s.get("createdBy") != GAME and _alertname(s)
        ]
        steps: list[Step] = []
        detected: list[float] = []
        mitigated: list[float] = []
        for number, entry in enumerate(history["rounds"], start=1):
            if "error" in entry:
                steps.append(Step(f"round {number} began", False, entry["error"]))
                continue
            begun, gone = entry["injected_at"], entry["gone_at"]
            name = f"round {number} (a fault at {_clock(begun)})"
            fired = _fired(context, begun, gone or time.time())
            acks = sorted(
                _starts(s) - begun
                for s in silences
                if _alertname(s) in fired
                and begun <= _starts(s) <= (gone or time.time()) + LATE_ACK_S
            )
            if acks:
                detected.append(acks[0])
            steps.append(
                Step(
                    f"{name}: detected",
                    bool(acks),
                    "Which alert paged you? `uv run obslab alerts --firing` lists them;"
                    " acknowledge it with a silence of that alert, by its name (step 3)."
                    if fired
                    else "No alert has fired since this fault began: give it a minute"
                    " (most alerts wait 15-60 s before they fire).",
                    f"in {acks[0]:.0f} s" if acks else "",
                )
            )
            if gone is None:
                steps.append(
                    Step(
                        f"{name}: mitigated",
                        False,
                        "The fault is still on: the alert's runbook (its Mitigation"
                        " section) says what to roll back, once you know which service"
                        " fails on its own.",
                    )
                )
                continue
            in_time = not entry["expired"]
            if in_time:
                mitigated.append(gone - begun)
            steps.append(
                Step(
                    f"{name}: mitigated",
                    in_time,
                    f"Nobody rolled this fault back: it ran until it expired after"
                    f" {game['fault_s'] // 60} minutes. The runbook's Mitigation section"
                    " says what to roll back.",
                    f"in {gone - begun:.0f} s" if in_time else "expired",
                )
            )
        played, planned = len(history["rounds"]), len(game["rounds"])
        over = history.get("finished_at") is not None
        scores = (
            f"time to detect {mean(detected):.0f} s, to mitigate {mean(mitigated):.0f} s on average"
            if detected and mitigated
            else ""
        )
        alive = over or background.running(context, "gameday")
        steps.append(
            Step(
                f"the game day is over: {planned} rounds played",
                over,
                f"{played} of {planned} rounds begun so far; the next fault comes a minute"
                " or two after the last one ended. Stay on call."
                if alive
                else "The game's scheduler stopped before the end: see"
                " .obslab/run/labs/12/gameday.log; `uv run obslab lab start 12` begins anew.",
                scores,
            )
        )
        return steps

    def reset(self, context: Context) -> None:
        background.stop(context, "gameday")
        folder = context.folder()
        history = _read(folder / "history.json")
        on = [e for e in history.get("rounds", []) if e.get("fault_id") and not e["gone_at"]]
        if on:
            admin = Admin.of_lab(context.settings)
            for entry in on:
                with contextlib.suppress(ChaosError):
                    admin.remove(entry["service"], entry["fault_id"])
            admin.close()
        if context.record.status != "not started":
            alertmanager = context.stack.alertmanager
            if silence_id := context.record.setup.get("silence"):
                alertmanager.expire(silence_id)
            # The learner's acknowledgements made during the game: left on, they would
            # hide the next lab's pages.
            for silence in alertmanager.silences():
                made = _starts(silence) >= context.record.started_at - 1
                if silence["status"]["state"] != "expired" and made:
                    alertmanager.expire(silence["id"])
        for name in ("plan.json", "history.json"):
            (folder / name).unlink(missing_ok=True)


def _alertname(silence: dict[str, Any]) -> str:
    """The alert a silence names with ``alertname=…`` (not a regex), or ""."""
    for matcher in silence.get("matchers", []):
        equal = not matcher["isRegex"] and matcher.get("isEqual", True)
        if matcher["name"] == "alertname" and equal:
            return str(matcher["value"])
    return ""


def _starts(silence: dict[str, Any]) -> float:
    return datetime.fromisoformat(silence["startsAt"]).timestamp()


def _fired(context: Context, begun: float, end: float) -> set[str]:
    """The alerts (but ChaosFaultActive) that fired between two times."""
    window = max(5, round(end - begun))
    series = context.stack.prometheus.query(
        "max by (alertname) (max_over_time("
        f'ALERTS{{alertstate="firing", alertname!="ChaosFaultActive"}}[{window}s]))',
        at=end,
    )
    return {s["metric"]["alertname"] for s in series}


LAB = GameDay()


if __name__ == "__main__":
    # SIGTERM (reset, `obslab down`) ends the game at once; reset rolls back its fault.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    play(Path(sys.argv[1]))
