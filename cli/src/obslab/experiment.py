"""Chaos experiments in the spirit of Chaos Toolkit: a YAML file says what "healthy"
looks like, what to break, what must be seen while it is broken, and how to undo it;
:func:`run_experiment` runs it against the lab and writes a JSON journal.

The steps of a run, each recorded in the journal:

1. **steady state**: every probe of ``steady_state`` holds (PromQL against the lab's
   Prometheus, each value within its tolerance); if not, nothing is injected;
2. **method**: the faults are injected through the admin API (and lab actions run,
   such as killing a component), with optional load placing orders through the edge;
3. **signals**: every probe of ``expect.probes`` must hold at some point before
   ``expect.deadline`` (a breaker open, a fallback counted, an alert firing);
4. **rollback**, always, also after Ctrl-C or an error: the faults are cleared and
   the actions stopped;
5. **recovery**: the steady state holds again before ``recovery_deadline``, and every
   order the load placed and the shop accepted (201) is found confirmed.

The verdict is ``completed`` only when all of it held; ``failed`` names the first
step that did not, ``aborted`` means the run was interrupted (rollback still ran).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import httpx
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from obslab.lab import LabSettings
from obslab.token import DEV_CLIENT_ID, DEV_CLIENT_SECRET

if TYPE_CHECKING:
    from rich.console import Console

    from obslab.chaos import Admin

#: The lab's Prometheus scrapes every 5 s: a window must reach back at least that far.
SCRAPE_INTERVAL_S = 5
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def _seconds(value: object) -> object:
    """``"90s"``, ``"2m"``, ``"500ms"`` or a number of seconds, as seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 30s, 2m or 500ms")
        return float(match[1]) * _UNITS[match[2] or "s"]
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0, le=3600)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tolerance(_Strict):
    """The value of a probe must be within ``min`` and ``max`` (either may be left out)."""

    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Probe(_Strict):
    """One check: a PromQL query whose first value is within ``tolerance``, or an alert
    (by name) that Prometheus says is firing.

    In a query, ``$window`` is the time since the faults were injected (plus a scrape
    interval), so ``max_over_time(x[$window])`` sees this experiment only, not the one
    before it.
    """

    name: str
    query: str | None = None
    tolerance: Tolerance | None = None
    #: The value when the query returns nothing (no series yet): else the probe fails.
    default: float | None = None
    alert: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.query is None) == (self.alert is None):
            raise ValueError("a probe has either a query (with a tolerance) or an alert")
        if self.query is not None and self.tolerance is None:
            raise ValueError("a query probe needs a tolerance (min and/or max)")
        return self


class FaultStep(_Strict):
    """A fault injected through a service's admin API (the body of POST /admin/chaos/faults)."""

    service: Literal["gateway", "catalog", "orders", "inventory", "payments", "notifications"]
    kind: str
    duration: Seconds = 300
    route: str | None = None
    probability: float | None = None
    ms: int | None = None
    jitter_ms: int | None = None
    status: int | None = None
    dependency: Literal["database", "redis"] | None = None
    kb: int | None = None
    cap_mb: int | None = None

    @model_validator(mode="after")
    def _known_kind(self) -> Self:
        from obslab.chaos import KINDS

        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}: one of {', '.join(KINDS)}")
        return self

    def body(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={"service", "duration"}, exclude_none=True)
        return {**fields, "duration_s": max(1, round(self.duration))}


class KillStep(_Strict):
    """Kill a lab component (``gateway-1``, ``rabbitmq``) with SIGKILL; the lab's
    supervisor restarts it. With ``every``, again and again until the rollback: an
    outage held by the lab's own tooling (native lab only)."""

    kill: str
    every: Seconds | None = None


def _step_kind(value: object) -> str:
    if isinstance(value, KillStep) or (isinstance(value, dict) and "kill" in value):
        return "kill"
    return "fault"


#: A step of the method: a fault, or (with a ``kill`` key) a lab action. Told apart by
#: that key, so an error names the fields of the one meant, not of both.
Step = Annotated[
    Annotated[FaultStep, Tag("fault")] | Annotated[KillStep, Tag("kill")],
    Discriminator(_step_kind),
]


class Load(_Strict):
    """Orders placed through the edge while the experiment runs."""

    orders_per_s: float = Field(default=2, gt=0, le=50)
    #: Shoppers at once: a slow answer holds one, the others go on placing orders.
    concurrency: int = Field(default=4, ge=1, le=32)
    product_id: int = Field(default=1, ge=1)


class Expect(_Strict):
    deadline: Seconds = 60
    probes: list[Probe] = Field(min_length=1)


class Experiment(_Strict):
    """An experiment file, ``chaos/experiments/<name>.yaml``."""

    title: str
    description: str
    #: An experiment that uses lab actions (``kill``) runs against the native lab only.
    native_only: bool = False
    load: Load | None = None
    steady_state: list[Probe] = Field(min_length=1)
    method: list[Step] = Field(min_length=1)
    expect: Expect
    recovery_deadline: Seconds = 90

    @model_validator(mode="after")
    def _kills_are_native(self) -> Self:
        if any(isinstance(step, KillStep) for step in self.method) and not self.native_only:
            raise ValueError("an experiment that kills a lab component must say native_only: true")
        return self


class ExperimentError(Exception):
    """The file cannot be read as an experiment; the message says where and why."""


def load_experiment(path: Path) -> Experiment:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ExperimentError(f"{path}: {exc}") from exc
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ExperimentError(f"{path} is not a valid experiment:\n{problems}") from exc


# ----------------------------------------------------------------- the run


class Interrupted(Exception):
    """SIGTERM: stop like Ctrl-C does, so the rollback runs."""


class NotSteady(Exception):
    """The steady state did not hold before anything was injected."""


class Prometheus:
    """Prometheus' HTTP API: instant queries and the alerts it holds."""

    def __init__(self, url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.http = httpx.Client(base_url=url, timeout=10, transport=transport)

    def value(self, probe: Probe, window_s: float) -> float | None:
        assert probe.query is not None
        query = probe.query.replace("$window", f"{math.ceil(window_s)}s")
        answer = self.http.get("/api/v1/query", params={"query": query}).json()
        result = answer.get("data", {}).get("result", [])
        if not result:
            return probe.default
        return float(result[0]["value"][1])

    def firing(self, alert: str) -> bool:
        alerts = self.http.get("/api/v1/alerts").json()["data"]["alerts"]
        return any(a["labels"].get("alertname") == alert and a["state"] == "firing" for a in alerts)

    def check(self, probe: Probe, since: float | None = None) -> dict[str, Any]:
        """Run ``probe`` once (``since``: when the faults went in, on the monotonic
        clock): what it saw and whether it held."""
        window_s = SCRAPE_INTERVAL_S + (time.monotonic() - since if since is not None else 60)
        try:
            if probe.alert is not None:
                return {"probe": probe.name, "alert": probe.alert, "ok": self.firing(probe.alert)}
            value = self.value(probe, window_s)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            return {"probe": probe.name, "ok": False, "error": str(exc)}
        assert probe.tolerance is not None
        ok = value is not None and probe.tolerance.holds(value)
        return {"probe": probe.name, "value": value, "ok": ok}


def _hold(
    prometheus: Prometheus, probes: list[Probe], deadline_s: float, since: float | None = None
) -> list[dict[str, Any]]:
    """Poll until every probe has held once (each may hold at a different moment), or
    the deadline passes; the last result of each."""
    results: dict[str, dict[str, Any]] = {}
    end = time.monotonic() + deadline_s
    while True:
        for probe in probes:
            if not results.get(probe.name, {}).get("ok"):
                result = prometheus.check(probe, since)
                result["at"] = _now()
                results[probe.name] = result
        if all(r["ok"] for r in results.values()) or time.monotonic() > end:
            return list(results.values())
        time.sleep(1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Shopper:
    """Places orders through the edge at a steady rate; remembers the accepted ones."""

    def __init__(self, edge: str, load: Load) -> None:
        self.edge, self.load = edge, load
        self.accepted: list[str] = []
        self.answers: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"chaos-load-{n}", daemon=True)
            for n in range(load.concurrency)
        ]
        self.http = httpx.Client(base_url=edge, timeout=30)
        self.headers: dict[str, str] = {}

    def start(self) -> None:
        self.headers = _bearer(self.http)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        body = {
            "items": [{"product_id": self.load.product_id, "quantity": 1}],
            "card": {"number": "4242424242424242", "expiry": "12/39", "cvc": "123"},
        }
        pause = self.load.concurrency / self.load.orders_per_s
        while not self._stop.wait(pause):
            try:
                response = self.http.post("/api/orders", json=body, headers=self.headers)
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                response, outcome = None, type(exc).__name__
            with self._lock:
                if response is not None and response.status_code == 201:
                    self.accepted.append(response.json()["id"])
                self.answers[outcome] = self.answers.get(outcome, 0) + 1

    def lost(self) -> list[dict[str, Any]]:
        """The accepted orders that are not confirmed now, with what the shop said."""
        lost = []
        for order_id in self.accepted:
            seen = self._read(order_id)
            if seen != "confirmed":
                lost.append({"order_id": order_id, "seen": seen})
        return lost

    def _read(self, order_id: str) -> str:
        """The order's status, or the answer that hid it; asked again after a 429 or 5xx
        (the edge's rate limit or a replica restarting is not a lost order)."""
        seen = ""
        for _ in range(5):
            try:
                response = self.http.get(f"/api/orders/{order_id}", headers=self.headers)
            except httpx.HTTPError as exc:
                seen = type(exc).__name__
                time.sleep(1)
                continue
            if response.status_code == 200:
                return str(response.json()["status"])
            seen = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                return seen
            time.sleep(min(5.0, float(response.headers.get("retry-after", "1") or 1)))
        return seen


def _bearer(http: httpx.Client) -> dict[str, str]:
    """A bearer token of the lab's demo client, when the gateway asks for one."""
    try:
        answer = http.post(
            "/api/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
        )
    except httpx.HTTPError:
        return {}
    if answer.status_code != 200:
        return {}
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


class Killer:
    """Kills a lab component once, or every ``every`` seconds until stopped."""

    def __init__(self, settings: LabSettings, step: KillStep) -> None:
        self.settings, self.step = settings, step
        self.kills = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.kill()
        if self.step.every is not None:
            self._thread = threading.Thread(target=self._repeat, daemon=True)
            self._thread.start()

    def _repeat(self) -> None:
        assert self.step.every is not None
        while not self._stop.wait(self.step.every):
            self.kill()

    def kill(self) -> None:
        state = json.loads(self.settings.path("state.json").read_text())
        component = state["components"].get(self.step.kill)
        if component is None:
            raise KeyError(f"the lab has no component {self.step.kill!r}")
        if component.get("pid"):
            try:
                os.killpg(int(component["pid"]), signal.SIGKILL)
                self.kills += 1
            except ProcessLookupError:
                pass  # already dead and being restarted

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def run_experiment(
    experiment: Experiment,
    admin: Admin,
    prometheus: Prometheus,
    settings: LabSettings,
    console: Console,
) -> tuple[dict[str, Any], Path]:
    """Run ``experiment``; its journal, also written under the runtime folder."""
    journal: dict[str, Any] = {
        "title": experiment.title,
        "started": _now(),
        "status": "running",
        "steps": {},
    }
    steps = journal["steps"]
    shopper = (
        Shopper(f"http://127.0.0.1:{settings.edge_port}", experiment.load)
        if experiment.load
        else None
    )
    killers: list[Killer] = []
    injected: set[str] = set()
    previous = signal.getsignal(signal.SIGTERM)

    def interrupted(*_: object) -> None:
        raise Interrupted

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupted)
    try:
        console.print(f"[bold]{experiment.title}[/]: checking the steady state")
        steps["steady_state_before"] = [prometheus.check(p) for p in experiment.steady_state]
        if not all(r["ok"] for r in steps["steady_state_before"]):
            raise NotSteady

        if shopper is not None:
            shopper.start()
        steps["method"] = []
        injected_at = time.monotonic()
        for step in experiment.method:
            if isinstance(step, FaultStep):
                console.print(f"injecting {step.kind} into {step.service}")
                injected.add(step.service)
                fault = admin.inject(step.service, step.body())
                steps["method"].append({"at": _now(), "fault": fault})
            else:
                console.print(
                    f"killing {step.kill}" + (f" every {step.every}s" if step.every else "")
                )
                killer = Killer(settings, step)
                killers.append(killer)
                killer.start()
                steps["method"].append({"at": _now(), "kill": step.kill, "every": step.every})

        console.print(f"watching for the expected signals ({experiment.expect.deadline:.0f}s)")
        steps["signals"] = _hold(
            prometheus, experiment.expect.probes, experiment.expect.deadline, injected_at
        )
        signals_ok = all(r["ok"] for r in steps["signals"])
    except NotSteady:
        steps["error"] = "the steady state did not hold before: nothing was injected"
        signals_ok = False
    except (KeyboardInterrupt, Interrupted):
        journal["status"] = "aborted"
        signals_ok = False
    except Exception as exc:  # the journal says what broke; the rollback still runs
        steps["error"] = f"{type(exc).__name__}: {exc}"
        signals_ok = False
    finally:
        console.print("rolling back")
        steps["rollback"] = _rollback(admin, injected, killers)
        if shopper is not None and ("error" in steps or journal["status"] == "aborted"):
            shopper.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)

    if journal["status"] == "aborted":
        return _finish(journal, "aborted", "interrupted; the faults were rolled back", settings)
    if "error" in steps:
        return _finish(journal, "failed", steps["error"], settings)
    # The load goes on while recovery is checked: a breaker closes only after trial calls.
    console.print(f"checking recovery ({experiment.recovery_deadline:.0f}s)")
    steps["recovery"] = _hold(prometheus, experiment.steady_state, experiment.recovery_deadline)
    recovered = all(r["ok"] for r in steps["recovery"])
    if shopper is not None:
        shopper.stop()
        lost = shopper.lost()
        steps["orders"] = {
            "answers": shopper.answers,
            "accepted": len(shopper.accepted),
            "lost": lost,
        }
        if lost:
            return _finish(journal, "failed", f"{len(lost)} accepted orders were lost", settings)
    if not signals_ok:
        missing = [r["probe"] for r in steps["signals"] if not r["ok"]]
        return _finish(journal, "failed", f"signals not seen: {', '.join(missing)}", settings)
    if not recovered:
        return _finish(journal, "failed", "the steady state did not come back", settings)
    return _finish(journal, "completed", "every expected signal seen, then recovered", settings)


def _rollback(admin: Admin, services: set[str], killers: list[Killer]) -> list[dict[str, Any]]:
    """Undo everything, each part on its own: one failing does not skip the others."""
    done: list[dict[str, Any]] = []
    for killer in killers:
        killer.stop()
        done.append({"stopped_killing": killer.step.kill, "kills": killer.kills})
    for service in sorted(services):
        try:
            done.append({"cleared": service, "faults": admin.clear(service)})
        except Exception as exc:
            done.append({"cleared": service, "error": str(exc)})
    return done


def _finish(
    journal: dict[str, Any], status: str, verdict: str, settings: LabSettings
) -> tuple[dict[str, Any], Path]:
    journal.update(status=status, verdict=verdict, ended=_now())
    folder = settings.path("chaos")
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9]+", "-", journal["title"].lower()).strip("-")
    path = folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{name}.json"
    path.write_text(json.dumps(journal, indent=2))
    return journal, path
