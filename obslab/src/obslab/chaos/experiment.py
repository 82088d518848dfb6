"""Chaos experiments in the spirit of Chaos Toolkit: a YAML file says what "healthy"
looks like, what to break, what must be seen while it is broken, and how to undo it;
:func:`run_experiment` runs it against the lab and writes a JSON journal.

The steps of a run, each recorded in the journal:

1. **steady state**: every probe of ``steady_state`` holds (PromQL against the lab's
   Prometheus, each value within its tolerance), and none of the expected alerts is
   firing at the webhook (waited for up to ``expect.resolve_deadline``); if not,
   nothing is injected;
2. **method**: the faults are injected through the admin API (and lab actions run,
   such as killing a component), with optional load placing orders through the edge;
3. **signals**: every probe of ``expect.probes`` must hold at some point before
   ``expect.deadline`` (a breaker open, a fallback counted), and every alert of
   ``expect.alerts`` must arrive at the lab's webhook receiver (Alertmanager delivered
   it: what ``obslab alerts`` lists) while the fault is on;
4. **rollback**, always, also after Ctrl-C or an error: the faults are cleared and
   the actions stopped;
5. **recovery**: the steady state holds again before ``recovery_deadline``, every
   order the load placed and the shop accepted (201) is found confirmed, and every
   expected alert that arrived arrives resolved before ``expect.resolve_deadline``
   (counted from the rollback);
6. **books** (:mod:`obslab.chaos.books`, on the native lab): within
   ``BOOKS_DEADLINE_S`` no order of the run is pending, the money kept equals what the
   confirmed orders cost, the stock taken equals what they bought, and each confirmed
   order was notified once.

The verdict is ``completed`` only when all of it held; ``failed`` names the first
step that did not, ``aborted`` means the run was interrupted (rollback still ran).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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

from obslab.chaos.books import NoBooks, Opening, balance, open_books
from obslab.chaos.faults import KINDS, Admin
from obslab.errors import Unreachable
from obslab.native.lab import LabSettings
from obslab.native.state import LabState
from obslab.prometheus import Prometheus
from obslab.shop import bearer, order_body

if TYPE_CHECKING:
    from rich.console import Console

#: How long the books may take to balance after recovery: the checkout's recovery
#: settles an order 20 s after it began (orders.recovery), then retries with backoff.
BOOKS_DEADLINE_S = 90.0
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
    #: The lab seeds 1000 units of each product: each experiment buys its own (6, 8-12;
    #: the e2e tests buy 1-5 and 7), so that running them all does not sell one out
    #: and turn every order into a 409.
    product_id: int = Field(default=1, ge=1)


class ExpectedAlert(_Strict):
    """An alert (by name, and by its ``service`` label where it can fire for several
    services) that must be delivered to the lab's webhook receiver while the fault is
    on, and delivered resolved after the rollback."""

    alert: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    service: str | None = None

    def matches(self, delivered: dict[str, Any]) -> bool:
        """Whether ``delivered`` (a row of ``obslab alerts --json``) is this alert."""
        return delivered["alertname"] == self.alert and self.service in (
            None,
            delivered["labels"].get("service"),
        )

    def __str__(self) -> str:
        return self.alert + (f"{{service={self.service}}}" if self.service else "")


class Expect(_Strict):
    """What must be seen while the faults are on (within ``deadline``), and how long
    the alerts may take to resolve after the rollback."""

    deadline: Seconds = 60
    probes: list[Probe] = []
    alerts: list[ExpectedAlert] = []
    #: From the rollback to the last expected alert delivered resolved (and, before the
    #: faults go in, the longest wait for one still firing from earlier). An alert
    #: resolves once its expression is false (a rate over the lab's 1m window forgets
    #: the fault in a minute, an SLO burn's 2m short window in two), plus a scrape and
    #: an evaluation (5 s each) and Alertmanager's group_interval (10 s) before the
    #: webhook hears of it.
    resolve_deadline: Seconds = 150

    @model_validator(mode="after")
    def _something_to_see(self) -> Self:
        if not self.probes and not self.alerts:
            raise ValueError("expect needs probes, alerts, or both")
        return self


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


def check_probe(prometheus: Prometheus, probe: Probe, since: float | None = None) -> dict[str, Any]:
    """Run ``probe`` once (``since``: when the faults went in, on the monotonic clock):
    what it saw and whether it held. ``$window`` in its query is the time since then."""
    window_s = SCRAPE_INTERVAL_S + (time.monotonic() - since if since is not None else 60)
    try:
        if probe.alert is not None:
            return {"probe": probe.name, "alert": probe.alert, "ok": prometheus.firing(probe.alert)}
        query = (probe.query or "").replace("$window", f"{math.ceil(window_s)}s")
        result = prometheus.query(query)
    except (Unreachable, ValueError, KeyError) as exc:
        return {"probe": probe.name, "ok": False, "error": str(exc)}
    value = float(result[0]["value"][1]) if result else probe.default
    ok = value is not None and probe.tolerance is not None and probe.tolerance.holds(value)
    return {"probe": probe.name, "value": value, "ok": ok}


class Webhook:
    """The alerts Alertmanager delivered to the lab's receiver: the rows of its store
    that ``obslab alerts --json`` prints, one per alert per firing, each ``firing``
    until Alertmanager sends it resolved."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of_lab(cls, settings: LabSettings) -> Webhook:
        return cls(settings.path("data", "telemetry.sqlite3"))

    def delivered(self) -> list[dict[str, Any]]:
        from obslab.telemetry.store import Store  # protobuf and sqlite: only when used

        if not self.path.exists():
            return []  # the receiver has not started (yet): nothing delivered
        store = Store(self.path, readonly=True)
        try:
            return store.alerts(limit=1000)
        finally:
            store.close()


def _instant(text: str) -> datetime:
    """An RFC 3339 time as Alertmanager sends it (``Z``, up to nanoseconds)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


def _firings(
    webhook: Webhook, expected: ExpectedAlert, since: datetime, until: datetime | None = None
) -> list[dict[str, Any]]:
    """The deliveries of ``expected`` that started firing between ``since`` and ``until``."""
    return [
        row
        for row in webhook.delivered()
        if expected.matches(row)
        and since <= _instant(row["starts_at"])
        and (until is None or _instant(row["starts_at"]) <= until)
    ]


def _arrived(webhook: Webhook, expected: ExpectedAlert, since: datetime) -> dict[str, Any]:
    """Whether ``expected`` has been delivered since the faults went in."""
    rows = _firings(webhook, expected, since)
    return {
        "alert": str(expected),
        "ok": bool(rows),
        "arrived": [
            {"service": r["service"], "starts_at": r["starts_at"], "status": r["status"]}
            for r in rows
        ],
    }


def _quiet(webhook: Webhook, expected: ExpectedAlert) -> dict[str, Any]:
    """Whether no delivery of ``expected`` is firing at the webhook."""
    firing = [r for r in webhook.delivered() if expected.matches(r) and r["status"] == "firing"]
    return {"alert": str(expected), "ok": not firing, "firing": len(firing)}


def _resolved(
    webhook: Webhook, expected: ExpectedAlert, fired: list[dict[str, Any]]
) -> dict[str, Any]:
    """Whether every firing in ``fired`` (the deliveries of ``expected`` while the fault
    was on) has been delivered resolved: found by labels and start, status ``resolved``."""
    keys = {(json.dumps(r["labels"], sort_keys=True), r["starts_at"]) for r in fired}
    now = {
        (json.dumps(r["labels"], sort_keys=True), r["starts_at"]): r for r in webhook.delivered()
    }
    firing = [key for key in keys if now.get(key, {}).get("status") != "resolved"]
    return {
        "alert": str(expected),
        "ok": not firing,
        "resolved": len(keys) - len(firing),
        "firing": len(firing),
    }


Check = Callable[[], dict[str, Any]]


def _probes(
    prometheus: Prometheus, probes: list[Probe], since: float | None = None
) -> dict[str, Check]:
    return {f"probe {p.name}": functools.partial(check_probe, prometheus, p, since) for p in probes}


def _hold(checks: dict[str, Check], deadline_s: float) -> list[dict[str, Any]]:
    """Poll until every check has held once (each may hold at a different moment), or
    the deadline passes; the last result of each."""
    results: dict[str, dict[str, Any]] = {}
    end = time.monotonic() + deadline_s
    while True:
        for name, check in checks.items():
            if not results.get(name, {}).get("ok"):
                result = check()
                result["at"] = _now()
                results[name] = result
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
        self.headers = bearer(self.http)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:  # not started: stopped before the load began
                thread.join(timeout=60)

    def _run(self) -> None:
        body = order_body(self.load.product_id)
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
            self._thread = threading.Thread(
                target=self._repeat, args=(self.step.every,), daemon=True
            )
            self._thread.start()

    def _repeat(self, every: float) -> None:
        while not self._stop.wait(every):
            self.kill()

    def kill(self) -> None:
        state = LabState.read(self.settings.path("state.json"))
        component = state.components.get(self.step.kill) if state else None
        if component is None:
            raise KeyError(f"the lab has no component {self.step.kill!r}")
        if component.pid:
            try:
                os.killpg(component.pid, signal.SIGKILL)
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
    webhook: Webhook | None = None,
) -> tuple[dict[str, Any], Path]:
    """Run ``experiment``; its journal, also written under the runtime folder. The
    expected alerts are looked for in ``webhook`` (default: the lab's receiver)."""
    webhook = webhook or Webhook.of_lab(settings)
    expect = experiment.expect
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
    opening: Opening | None = None
    previous = signal.getsignal(signal.SIGTERM)

    def interrupted(*_: object) -> None:
        raise Interrupted

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupted)
    try:
        console.print(f"[bold]{experiment.title}[/]: checking the steady state")
        steps["steady_state_before"] = [check_probe(prometheus, p) for p in experiment.steady_state]
        if not all(r["ok"] for r in steps["steady_state_before"]):
            raise NotSteady("the steady state did not hold before: nothing was injected")
        # An alert still firing (an earlier experiment's SLO burn takes two minutes to
        # end) could not be told from one this fault sets off: wait for it to resolve.
        console.print("waiting for the expected alerts to be quiet")
        steps["alerts_before"] = _hold(
            {str(a): functools.partial(_quiet, webhook, a) for a in expect.alerts},
            expect.resolve_deadline,
        )
        if not all(r["ok"] for r in steps["alerts_before"]):
            raise NotSteady("an expected alert was still firing before: nothing was injected")
        # An alert is stamped with the time Prometheus fired it, which is after the fault
        # that caused it: a delivery that started earlier is not this experiment's.
        fault_on = datetime.now(UTC) - timedelta(seconds=1)
        try:
            opening = open_books(settings, datetime.now(UTC))
        except NoBooks as exc:
            steps["books"] = {"ok": True, "skipped": str(exc)}

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

        console.print(f"watching for the expected signals ({expect.deadline:.0f}s)")
        arrivals = {
            f"alert {a}": functools.partial(_arrived, webhook, a, fault_on) for a in expect.alerts
        }
        watched = _hold(_probes(prometheus, expect.probes, injected_at) | arrivals, expect.deadline)
        steps["signals"] = [r for r in watched if "probe" in r]
        steps["alerts"] = [r for r in watched if "probe" not in r]
        signals_ok = all(r["ok"] for r in watched)
    except NotSteady as exc:
        steps["error"] = str(exc)
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
        rolled_back, fault_off = time.monotonic(), datetime.now(UTC)
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
    steps["recovery"] = _hold(
        _probes(prometheus, experiment.steady_state), experiment.recovery_deadline
    )
    recovered = all(r["ok"] for r in steps["recovery"])
    resolved = _wait_resolved(webhook, expect, fault_on, fault_off, rolled_back, console)
    steps["alerts_resolved"] = resolved
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
    if opening is not None:
        console.print(f"checking the books ({BOOKS_DEADLINE_S:.0f}s)")
        steps["books"] = balance(settings, opening, BOOKS_DEADLINE_S)
        if not steps["books"]["ok"]:
            problems = "; ".join(steps["books"]["problems"])
            return _finish(journal, "failed", f"the books do not balance: {problems}", settings)
    if not signals_ok:
        missing = [r["probe"] for r in steps["signals"] if not r["ok"]]
        missing += [r["alert"] for r in steps["alerts"] if not r["ok"]]
        return _finish(journal, "failed", f"signals not seen: {', '.join(missing)}", settings)
    if not recovered:
        return _finish(journal, "failed", "the steady state did not come back", settings)
    if not all(r["ok"] for r in resolved):
        firing = ", ".join(r["alert"] for r in resolved if not r["ok"])
        return _finish(journal, "failed", f"alerts not resolved: {firing}", settings)
    return _finish(
        journal, "completed", "every expected signal and alert seen, then recovered", settings
    )


def _wait_resolved(
    webhook: Webhook,
    expect: Expect,
    fault_on: datetime,
    fault_off: datetime,
    rolled_back: float,
    console: Console,
) -> list[dict[str, Any]]:
    """After the rollback, until ``expect.resolve_deadline`` (counted from it): every
    expected alert that fired while the fault was on is delivered resolved."""
    if not expect.alerts:
        return []
    remaining = max(1.0, rolled_back + expect.resolve_deadline - time.monotonic())
    console.print(f"waiting for the alerts to resolve ({remaining:.0f}s)")
    checks: dict[str, Check] = {}
    for expected in expect.alerts:
        fired = _firings(webhook, expected, fault_on, fault_off)
        if fired:  # one that never arrived has failed the run already
            checks[str(expected)] = functools.partial(_resolved, webhook, expected, fired)
    return _hold(checks, remaining)


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
