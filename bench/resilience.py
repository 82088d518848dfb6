"""The resilience figure of ``make bench``: payments slowed to 2 s, the layer on and off.

For each mode the checkout chain starts afresh (telemetry off: this measures the
resilience layer, not the instrumentation), orders are placed by a few concurrent
clients, and payments is slowed by 2 s with the chaos admin API
(a ``latency`` fault, as ``obslab chaos inject payments latency --ms 2000`` does).
While the fault lasts we take the gateway's order latencies; then the fault is
cleared and the load goes on until orders' breaker to payments has closed again.

* **off** (``OBSLAB_RESILIENCE=false``): plain calls with the 5 s per-call timeout;
  every order waits for the slow bank, so the p99 is at least 2 s.
* **on**: a 0.5 s request budget (``OBSLAB_REQUEST_BUDGET_S``) that travels
  downstream, and the breaker: orders fail within the budget instead of waiting,
  then at once while the breaker is open.

Also measured, in the "on" mode, for orders' breaker to payments and the gateway's
to orders side by side: seconds from injecting the fault to the breaker being open
(with the deadline headroom, only the one next to the fault should open), and from
clearing it to the breaker closed again (at least ``breaker_wait_open_s``, 5 s, plus
the trial calls).

Run alone: ``uv run python -m bench.resilience``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from bench.chain import Chain
from tests.support.auth import auth_headers
from tests.support.backends import Backends

REPO = Path(__file__).resolve().parents[1]
# Apart from the rest of the bench (its folder and Redis database 14), so a run of one
# never wipes or faults the other's: the faults live in this database.
WORK = REPO / ".obslab" / "bench-resilience"
REDIS_DB = 12
#: The budget of a request when the layer is on: the p99 it should hold to.
BUDGET_S = 0.5
#: The budget is when the gateway stops waiting; writing the 504 after it takes a few
#: milliseconds more (tens on a busy 2-core machine), so the target allows 10 %.
ANSWER_ALLOWANCE = 1.1
FAULT_MS = 2000
CLIENTS = 4
FAULT_S = 15.0
CARD = {"number": "4242424242424242", "expiry": "12/39", "cvc": "123"}


def say(*parts: object) -> None:
    print(*parts, flush=True)


def breaker_state(service_url: str, downstream: str) -> str:
    """The state a service's breaker to ``downstream`` reports on its /metrics."""
    text = httpx.get(f"{service_url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "obslab_breaker_state"
                and labels.get("downstream") == downstream
                and sample.value == 1
            ):
                return labels["state"]
    return "unknown"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank: with few samples, an observed value."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def place_orders(
    gateway: str, stop: asyncio.Event, log: list[tuple[float, float, int]]
) -> None:
    """One client placing orders back to back; logs (start, seconds, status) of each."""
    # The gateway's dev client's token (OBSLAB_ENVIRONMENT=dev, as the chain runs it).
    headers = await asyncio.to_thread(auth_headers, gateway)
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30) as client:
        # The gateway's dev client (OBSLAB_ENVIRONMENT=dev): one token for the run.
        answer = await client.post(
            "/api/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("obslab-lab", "obslab-lab-dev-secret"),
        )
        token = answer.raise_for_status().json()["access_token"]
        client.headers["authorization"] = f"Bearer {token}"
        n = 0
        while not stop.is_set():
            n += 1
            body = {"items": [{"product_id": 1 + n % 12, "quantity": 1}], "card": CARD}
            start = time.monotonic()
            try:
                status = (await client.post("/api/orders", json=body)).status_code
            except httpx.HTTPError:
                status = 0
            log.append((start, time.monotonic() - start, status))


async def wait_for_state(
    service_url: str, downstream: str, state: str, since: float, within_s: float
) -> float | None:
    """Seconds from ``since`` until the breaker reports ``state`` (polled every 0.1 s)."""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if await asyncio.to_thread(breaker_state, service_url, downstream) == state:
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


#: The breakers watched: (service, the downstream its breaker guards).
BREAKERS = (("orders", "payments"), ("gateway", "orders"))


async def watch(chain: Chain, state: str, since: float, within_s: float) -> dict[str, Any]:
    """Seconds until each watched breaker reports ``state``, side by side."""
    seconds = await asyncio.gather(
        *(
            wait_for_state(chain.urls[service], downstream, state, since, within_s)
            for service, downstream in BREAKERS
        )
    )
    return {f"{s}->{d}": t for (s, d), t in zip(BREAKERS, seconds, strict=True)}


async def measure(chain: Chain, token: str, on: bool) -> dict[str, Any]:
    payments = httpx.AsyncClient(
        base_url=chain.urls["payments"], headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    stop, log = asyncio.Event(), []
    clients = [
        asyncio.create_task(place_orders(chain.urls["gateway"], stop, log)) for _ in range(CLIENTS)
    ]
    result: dict[str, Any] = {}
    try:
        await asyncio.sleep(3)  # warm: connections open, caches filled
        # Every payments route (orders only calls POST /charges); health is never slowed.
        fault = {"kind": "latency", "ms": FAULT_MS, "duration_s": 300}
        (await payments.post("/admin/chaos/faults", json=fault)).raise_for_status()
        injected = time.monotonic()
        if on:
            result["fault_to_open_s"] = await watch(chain, "open", injected, FAULT_S)
        await asyncio.sleep(max(0.0, injected + FAULT_S - time.monotonic()))
        (await payments.delete("/admin/chaos/faults")).raise_for_status()
        cleared = time.monotonic()
        if on:
            result["recovery_to_closed_s"] = await watch(chain, "closed", cleared, 60)
    finally:
        stop.set()
        await asyncio.gather(*clients)
        await payments.aclose()
    during = [(d, s) for start, d, s in log if injected <= start < cleared]
    durations = [d for d, _ in during]
    result.update(
        orders=len(during),
        p50_s=statistics.median(durations),
        p99_s=percentile(durations, 99),
        max_s=max(durations),
        created=sum(1 for _, s in during if s == 201) / len(during),
        statuses=sorted({s for _, s in during}),
    )
    return result


def run_mode(on: bool, backends: Backends) -> dict[str, Any]:
    mode = "on" if on else "off"
    redis_url = f"{backends.redis_url}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    token = secrets.token_urlsafe(24)
    env = {
        "OBSLAB_ENVIRONMENT": "dev",  # the gateway's dev client and signing key
        # Clients back to back from one address: measure the breakers, not the limiter.
        "OBSLAB_RATE_LIMIT_ENABLED": "false",
        "OBSLAB_LOG_FORMAT": "json",
        "OBSLAB_TELEMETRY": "false",
        "OBSLAB_BANK_LATENCY_MS": "0",
        "OBSLAB_SEED_STOCK": "1000000000",
        "OBSLAB_REDIS_URL": redis_url,
        "OBSLAB_AMQP_URL": backends.new_vhost(),
        "OBSLAB_ADMIN_TOKEN": token,
        "OBSLAB_RESILIENCE": "true" if on else "false",
        **({"OBSLAB_REQUEST_BUDGET_S": str(BUDGET_S)} if on else {}),
    }
    folder = WORK / mode
    shutil.rmtree(folder, ignore_errors=True)  # logs of this run only
    folder.mkdir(parents=True)
    chain = Chain(env, backends.postgres_url, folder)
    try:
        chain.start()
        result = asyncio.run(measure(chain, token, on))
    finally:
        chain.stop()
    say(
        f"[resilience {mode}] p99 {result['p99_s']:.2f}s, p50 {result['p50_s']:.2f}s,"
        f" {result['orders']} orders under the fault, {result['created']:.0%} created"
    )
    return {"mode": mode, **result}


def run(backends: Backends) -> dict[str, Any]:
    """Both modes, off then on; the figures for the report."""
    off, on = run_mode(False, backends), run_mode(True, backends)
    return {
        "fault": f"payments +{FAULT_MS} ms for {FAULT_S:.0f} s",
        "budget_s": BUDGET_S,
        "off": off,
        "on": on,
        "target_met": (
            on["p99_s"] <= BUDGET_S * ANSWER_ALLOWANCE and off["p99_s"] >= FAULT_MS / 1000
        ),
    }


def markdown(result: dict[str, Any]) -> str:
    off, on = result["off"], result["on"]

    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    return "\n".join(
        [
            f"### Resilience: {result['fault']}",
            "",
            "| | layer off | layer on |",
            "|---|---|---|",
            f"| gateway p99, order placement | {off['p99_s']:.2f} s | {on['p99_s']:.2f} s |",
            f"| gateway p50 | {off['p50_s']:.2f} s | {on['p50_s']:.2f} s |",
            f"| gateway max | {off['max_s']:.2f} s | {on['max_s']:.2f} s |",
            f"| orders placed during the fault | {off['orders']} | {on['orders']} |",
            f"| of which created (201) | {off['created']:.0%} | {on['created']:.0%} |",
            *(
                f"| fault → breaker {name} open, then cleared → closed | |"
                f" {seconds(on['fault_to_open_s'][name])},"
                f" {seconds(on['recovery_to_closed_s'][name])} |"
                for name in on["fault_to_open_s"]
            ),
            "",
            f"Target: p99 within the {result['budget_s']} s budget with the layer on (+10 % to"
            f" write the answer), at least {FAULT_MS / 1000:.0f} s without:"
            f" **{'met' if result['target_met'] else 'NOT met'}**."
            " With the layer on, orders fail fast (503/504) instead of waiting: the"
            " shop answers, and says it could not take the order.",
            "",
        ]
    )


def main() -> None:
    backends = Backends()
    try:
        result = run(backends)
    finally:
        backends.close()
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "resilience.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out / "resilience.md").write_text(table)
    say("\n" + table)


if __name__ == "__main__":
    main()
