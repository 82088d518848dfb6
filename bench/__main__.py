"""``uv run python -m bench``: run the checkout chain with telemetry off and on, alternately.

Each run starts the six services afresh (new databases, a new RabbitMQ vhost, an
empty Redis database), warms them up, measures one k6 load, waits until the
notifications worker has handled every order event, and stops them. Three modes:

* ``off``: ``OBSLAB_TELEMETRY=false``, the baseline;
* ``on``: every signal, exported to a receiver that accepts and discards
  (:mod:`bench.sink`), so the figures are the services' own cost;
* ``stored``: the same, exported to the native lab's receiver storing everything
  in SQLite (:mod:`bench.receiver`), which issue 9 wants at >= 0.9x ``on``.

The order is off, on, stored, off, on, stored, … so that a machine that drifts
(another job, a warm page cache) drifts for every mode alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import redis

from bench import coldstart, report, resilience
from bench.chain import ORDER, Chain
from bench.load import run_k6
from bench.native import time_native_lab
from bench.receiver import StoringReceiver
from bench.sink import DiscardingReceiver
from tests.support.backends import Backends  # the machine's servers, or private ones

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
WORK = REPO / ".obslab" / "bench"
MODES = ("off", "on", "stored")
#: Kept apart from the lab's database 0 and the tests' 15; emptied before each run.
REDIS_DB = 14

#: Every mode: JSON logs to a file, a bank that answers at once (so the figures are
#: the services' own cost, not a simulated wait), and stock that never runs out.
COMMON_ENV = {
    "OBSLAB_LOG_FORMAT": "json",
    "OBSLAB_BANK_LATENCY_MS": "0",
    "OBSLAB_SEED_STOCK": "1000000000",
}


def say(*parts: object) -> None:
    """Progress, shown as it happens even when the output is piped."""
    print(*parts, flush=True)


def mode_env(mode: str, otlp_endpoint: str) -> dict[str, str]:
    """The environment of ``off``, or of ``on``/``stored`` (which differ only in the endpoint)."""
    if mode == "off":
        return {"OBSLAB_TELEMETRY": "false"}
    return {
        "OBSLAB_TELEMETRY": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        # The SDK's default, spelled out: every trace is sampled.
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }


def wait_until_drained(chain: Chain, timeout: float = 30) -> bool:
    """Poll until notifications has handled an event for every order that ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = chain.counter("orders", "obslab_orders_placed_total") + chain.counter(
            "orders", "obslab_orders_failed_total"
        )
        if chain.counter("notifications", "obslab_events_consumed_total") >= ended:
            return True
        time.sleep(0.2)
    return False


def run_once(
    mode: str, label: str, args: argparse.Namespace, backends: Backends, sink: DiscardingReceiver
) -> dict[str, Any]:
    redis_url = f"{backends.redis_url}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    amqp_url = backends.new_vhost()
    folder = WORK / label
    folder.mkdir(parents=True)
    receiver = StoringReceiver(folder) if mode == "stored" else None
    otlp: StoringReceiver | DiscardingReceiver = receiver or sink
    env = {
        **COMMON_ENV,
        **mode_env(mode, otlp.endpoint),
        "OBSLAB_REDIS_URL": redis_url,
        "OBSLAB_AMQP_URL": amqp_url,
    }
    chain = Chain(env, backends.postgres_url, folder)
    stored: dict[str, Any] = {}
    try:
        ready = chain.start()
        slowest = max(ready, key=ready.__getitem__)
        say(f"[{label}] ready: slowest {slowest} {ready[slowest]:.2f}s; warming up")
        run_k6(chain.urls["gateway"], args.vus, args.warmup, folder / "warmup.json")
        wait_until_drained(chain)
        cpu_before, otlp_before = chain.cpu(), otlp.snapshot()
        load = run_k6(chain.urls["gateway"], args.vus, args.duration, folder / "k6.json")
        # How busy the machine was (other jobs included): the 1-minute load average.
        machine_load = os.getloadavg()[0]
        drained = wait_until_drained(chain)
        cpu_after, otlp_after, rss = chain.cpu(), otlp.snapshot(), chain.rss()
        if receiver is not None:
            stored["rss_mib"] = receiver.rss()
    finally:
        try:
            chain.stop()
            if receiver is not None:
                # After the services' last flush (on shutdown): everything they sent.
                stored.update(receiver.snapshot())
        finally:
            if receiver is not None:
                receiver.close()
    say(
        f"[{label}] {load['requests_per_s']:.0f} req/s, p50 {load['p50_ms']:.1f} ms,"
        f" p99 {load['p99_ms']:.1f} ms, errors {load['error_rate']:.2%}"
    )
    return {
        "mode": mode,
        "label": label,
        "load": load,
        "drained": drained,
        "cpu_s": {s: cpu_after[s] - cpu_before[s] for s in ORDER},
        "rss_mib": rss,
        "ready_s": ready,
        "machine_load": machine_load,
        "otlp": {k: otlp_after[k] - otlp_before[k] for k in otlp_after},
        **({"receiver": stored} if receiver is not None else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of off, on, stored (default 2)"
    )
    parser.add_argument("--duration", type=int, default=25, help="seconds of load per run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load before it")
    parser.add_argument("--vus", type=int, default=4, help="k6 virtual users")
    parser.add_argument("--skip-lab", action="store_true", help="do not time `obslab up`")
    parser.add_argument(
        "--skip-resilience", action="store_true", help="no slow-payments run (bench/resilience.py)"
    )
    parser.add_argument(
        "--skip-coldstart", action="store_true", help="no Lambda cold starts (bench/coldstart.py)"
    )
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        raise SystemExit("The benchmark reads /proc: it runs on Linux only.")

    shutil.rmtree(WORK, ignore_errors=True)
    started = time.monotonic()
    backends = Backends()
    sink = DiscardingReceiver()
    runs = []
    try:
        for round_ in range(1, args.rounds + 1):
            for mode in MODES:
                label = f"{mode}-{round_}"
                runs.append(run_once(mode, label, args, backends, sink))
        resilience_result = None if args.skip_resilience else resilience.run(backends)
        coldstart_result = None if args.skip_coldstart else coldstart.run(backends)
    finally:
        sink.close()
        backends.close()
    lab = None
    if not args.skip_lab:
        say("[lab] timing `obslab up` on free ports ...")
        lab = time_native_lab()
        say(f"[lab] up in {lab['up_fresh_s']:.1f}s, again in {lab['up_again_s']:.1f}s")

    result = report.summarise(runs, lab, vars(args), time.monotonic() - started)
    if resilience_result is not None:
        result["resilience"] = resilience_result
    if coldstart_result is not None:
        result["coldstart"] = coldstart_result
        result["targets"] += coldstart_result["targets"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    table = report.markdown(result)
    if resilience_result is not None:
        table += "\n" + resilience.markdown(resilience_result)
    if coldstart_result is not None:
        table += "\n" + coldstart.markdown(coldstart_result)
    (RESULTS / "latest.md").write_text(table)
    say("\n" + table)


if __name__ == "__main__":
    main()
