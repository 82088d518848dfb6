"""The cold start of ``make bench``: catalog and payments as Lambda functions, each
started in fresh processes, with and without the deferred imports.

Each sample is a new Python process, as a new Lambda execution environment is one.
It times, with telemetry on and exported to a local receiver (where the collector
layer would listen):

* **imports**: the service's modules, Mangum and obskit's function module;
* **init**: the rest of the init phase: the app built, its lifespan entered (the
  database checked, the engine and Redis client made): ``<service>.function``'s import;
* **first invocation**: a recorded API Gateway event (a GET), the cold one;
* **warm invocation**: the median of the same event sent again and again, and the
  same request given to the ASGI app directly, without Mangum, the invocation span
  or the flush: the difference is the handler's overhead.

Three modes: ``deferred`` (the kit as it is), ``eager`` (``OBSLAB_EAGER_IMPORTS``:
what only a container uses imported up front too, see ``obskit._function``) and
``deferred, telemetry off``, for scale. Samples alternate between modes so that a
machine that drifts drifts for all of them; the figures are the medians.

Bytecode is compiled once, before the samples (a deployed package ships it: see
``serverless/Makefile``), into a cache of the bench's own.

Run alone: ``uv run python -m bench.coldstart [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import redis

from bench.report import MAX_COLD_START_MS, MAX_WARM_OVERHEAD_MS
from bench.sink import DiscardingReceiver
from tests.support.backends import Backends

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".obslab" / "bench-coldstart"
SERVICES = {"catalog": "get-product", "payments": "read-charge"}
MODES = {
    "deferred": {"OBSLAB_TELEMETRY": "true"},
    "eager": {"OBSLAB_TELEMETRY": "true", "OBSLAB_EAGER_IMPORTS": "true"},
    "deferred, telemetry off": {"OBSLAB_TELEMETRY": "false"},
}
#: Kept apart from the lab's Redis database 0 and the tests' 15 (and 13).
REDIS_DB = 14
WARM_INVOCATIONS = 50

#: What one fresh process runs: argv[1] the service, argv[2] the event's name, argv[3]
#: where to write the figures (stdout is the service's log), argv[4] warm invocations.
CHILD = r"""
import time
started_ns = time.time_ns()
import asyncio, importlib, json, statistics, sys

service, event_name, out, repeats = *sys.argv[1:4], int(sys.argv[4])
t0, c0 = time.perf_counter(), time.process_time()
importlib.import_module(f"{service}.main")
import mangum.handlers, obskit._function
t1, c1 = time.perf_counter(), time.process_time()
handler = importlib.import_module(f"{service}.function").handler
t2, c2 = time.perf_counter(), time.process_time()

import obskit
settings = handler.app.state.settings
token = obskit.service_token(settings.service_token_key.get_secret_value(), "bench", service)
with open(f"services/{service}/events/{event_name}.json") as file:
    event = json.load(file)
event["headers"]["authorization"] = f"Bearer {token}"
context = obskit.LocalContext(handler.name)

def invoke():
    begun = time.perf_counter()
    response = handler(event, context)
    assert response["statusCode"] < 500, response
    return time.perf_counter() - begun

first = invoke()
c3 = time.process_time()
warm = statistics.median(invoke() for _ in range(repeats))

# The same request straight to the ASGI app, on the function's loop: no Mangum, no
# invocation span, no flush.
gateway = mangum.handlers.HTTPGateway(event, context, handler._mangum.config)
scope, body = gateway.scope, gateway.body

async def direct():
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    async def receive():
        return messages.pop() if messages else {"type": "http.disconnect"}
    async def send(message):
        pass
    begun = time.perf_counter()
    await handler.app(scope, receive, send)
    return time.perf_counter() - begun

asgi = statistics.median(handler.loop.run_until_complete(direct()) for _ in range(repeats))
handler.close()
with open(out, "w") as file:
    json.dump({"started_ns": started_ns, "imports_s": t1 - t0, "init_s": t2 - t1,
               "first_s": first, "warm_s": warm, "asgi_s": asgi, "cold_cpu_s": c3 - c0}, file)
"""


def say(*parts: object) -> None:
    print(*parts, flush=True)


def sample(service: str, env: dict[str, str]) -> dict[str, float]:
    """One fresh process: its figures in milliseconds."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        arguments = [service, SERVICES[service], out.name, str(WARM_INVOCATIONS)]
        spawned_ns = time.time_ns()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *arguments],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{service}'s cold start failed:\n{done.stderr[-3000:]}")
        figures = json.loads(Path(out.name).read_text())
    return {
        "python_start_ms": (figures["started_ns"] - spawned_ns) / 1e6,
        **{key.replace("_s", "_ms"): figures[key] * 1000 for key in figures if key.endswith("_s")},
    }


def prepare(service: str, env: dict[str, str]) -> None:
    """Compile the bytecode and make the database: what a deployment does once."""
    subprocess.run(
        [sys.executable, "-c", f"import {service}.function"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=300,
    )
    if service == "payments":  # so that the read finds a charge
        code = (
            "import json, obskit\n"
            "from payments.function import handler\n"
            "s = handler.app.state.settings\n"
            "e = json.load(open('services/payments/events/create-charge.json'))\n"
            "e['headers']['authorization'] = 'Bearer ' + obskit.service_token("
            "s.service_token_key.get_secret_value(), 'bench', 'payments')\n"
            "print(handler(e, obskit.LocalContext(handler.name))['statusCode'])\n"
            "handler.close()"
        )
        subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, check=True
        )


def summarise(samples: list[dict[str, float]]) -> dict[str, float]:
    figures = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    figures["cold_start_ms"] = statistics.median(
        s["imports_ms"] + s["init_ms"] + s["first_ms"] for s in samples
    )
    figures["cold_start_min_ms"] = min(
        s["imports_ms"] + s["init_ms"] + s["first_ms"] for s in samples
    )
    figures["cold_cpu_ms"] = statistics.median(s["cold_cpu_ms"] for s in samples)
    figures["overhead_ms"] = statistics.median(s["warm_ms"] - s["asgi_ms"] for s in samples)
    return figures


async def _drop(postgres_url: str, names: list[str]) -> None:
    connection = await asyncpg.connect(f"{postgres_url}/postgres")
    try:
        for name in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def run(backends: Backends, rounds: int = 5) -> dict[str, Any]:
    """``rounds`` samples of every service in every mode; the figures for the report."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    sink = DiscardingReceiver()
    redis_url = f"{backends.redis_url}/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    databases = {service: f"obslab_bench_fn_{service}" for service in SERVICES}
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OBSLAB_", "OTEL_"))},
        "OBSLAB_ENVIRONMENT": "dev",
        "OBSLAB_LOG_FORMAT": "json",
        "OBSLAB_REDIS_URL": redis_url,
        "OBSLAB_BANK_LATENCY_MS": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        # Compiled once into a cache of our own (this machine sets
        # PYTHONDONTWRITEBYTECODE): a deployed package ships its bytecode.
        "PYTHONPYCACHEPREFIX": str(WORK / "pycache"),
    }
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        s: {m: [] for m in MODES} for s in SERVICES
    }
    try:
        for service in SERVICES:
            env = {**base, "OBSLAB_DATABASE_URL": f"{backends.postgres_url}/{databases[service]}"}
            prepare(service, env)
            for round_ in range(1, rounds + 1):
                for mode, switches in MODES.items():
                    figures = sample(service, {**env, **switches})
                    results[service][mode].append(figures)
                say(
                    f"[coldstart {service} {round_}/{rounds}] "
                    + ", ".join(
                        f"{mode}: {results[service][mode][-1]['imports_ms']:.0f}"
                        f"+{results[service][mode][-1]['init_ms']:.0f}"
                        f"+{results[service][mode][-1]['first_ms']:.0f} ms"
                        for mode in MODES
                    )
                )
    finally:
        sink.close()
        asyncio.run(_drop(backends.postgres_url, list(databases.values())))
    figures = {
        service: {mode: summarise(samples) for mode, samples in modes.items()}
        for service, modes in results.items()
    }
    on = [figures[s]["deferred"] for s in SERVICES]
    return {
        "rounds": rounds,
        "warm_invocations": WARM_INVOCATIONS,
        "machine_load": round(os.getloadavg()[0], 1),
        "figures": figures,
        "samples": results,
        "targets": [
            {
                "what": "cold start, telemetry on: imports + init + first invocation (ms)",
                "target": f"<= {MAX_COLD_START_MS}",
                "value": round(max(f["cold_start_ms"] for f in on), 1),
                "met": all(f["cold_start_ms"] <= MAX_COLD_START_MS for f in on),
            },
            {
                "what": "warm invocation: handler overhead over the ASGI app (ms)",
                "target": f"<= {MAX_WARM_OVERHEAD_MS}",
                "value": round(max(f["overhead_ms"] for f in on), 2),
                "met": all(f["overhead_ms"] <= MAX_WARM_OVERHEAD_MS for f in on),
            },
        ],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "### Cold start: catalog and payments as Lambda functions",
        "",
        f"Medians of {result['rounds']} fresh processes per service and mode (warm: the"
        f" median of {result['warm_invocations']} invocations in each); machine load"
        f" {result['machine_load']} at the end.",
        "",
        "| service, mode | python start | imports | init | first invocation | cold start"
        " (imports + init + first) | its CPU time | warm invocation | ASGI app alone"
        " | handler overhead |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for service, modes in result["figures"].items():
        for mode, f in modes.items():
            lines.append(
                f"| {service}, {mode} | {f['python_start_ms']:.0f} ms | {f['imports_ms']:.0f} ms"
                f" | {f['init_ms']:.0f} ms | {f['first_ms']:.1f} ms"
                f" | **{f['cold_start_ms']:.0f} ms** (best {f['cold_start_min_ms']:.0f})"
                f" | {f['cold_cpu_ms']:.0f} ms | {f['warm_ms']:.2f} ms"
                f" | {f['asgi_ms']:.2f} ms | {f['overhead_ms']:.2f} ms |"
            )
    lines += ["", "| target | wanted | measured | met |", "|---|---|---:|---|"]
    for target in result["targets"]:
        met = "yes" if target["met"] else "**no**"
        lines.append(f"| {target['what']} | {target['target']} | {target['value']} | {met} |")
    lines += [
        "",
        "Python start (interpreter and site, before the handler module) is Lambda's"
        " runtime start, not counted in the target. CPU time is the cold start's own,"
        " which other jobs on a busy machine barely move (its wall time also waits for"
        " the database and for the CPU). The warm invocation includes the flush of spans,"
        " logs and metrics to the local receiver.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="processes per service and mode")
    args = parser.parse_args()
    backends = Backends()
    try:
        result = run(backends, args.rounds)
    finally:
        backends.close()
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "coldstart.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out / "coldstart.md").write_text(table)
    say("\n" + table)


if __name__ == "__main__":
    main()
