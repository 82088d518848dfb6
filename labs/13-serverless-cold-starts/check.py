"""Lab 13, serverless cold starts: the learner runs catalog's Lambda handler here
(``obslab fn invoke``) with its telemetry sent to the lab's receiver, then tells the
cold invocation from the warm ones and reads how long the init phase took, from the
traces alone (obskit._function: ``function.init`` is a trace of its own, each
invocation a SERVER span with ``faas.coldstart``).

The check reads the lab's trace store for what ran since the lab started and compares
the learner's answer with it; the shop itself is not touched.
"""

from __future__ import annotations

import re
from typing import Any

from obslab.labkit.base import Context, Exercise, LabError, Step

#: The function's name (obskit._function: obslab-<service>), its invocations' root span.
FUNCTION = "obslab-catalog"
INIT = "function.init"
#: How far the init time answered may be from the trace's: read off a table, rounded.
TOLERANCE = 0.1
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _since_start(context: Context, route: str) -> list[dict[str, Any]]:
    """The traces whose root is ``route``, started since the lab was."""
    traces = context.stack.telemetry.traces(route=route, limit=200)
    return [t for t in traces if t["start_ns"] >= context.record.started_ns]


def _invocations(context: Context) -> dict[str, bool]:
    """Each invocation's trace id and whether it was a cold start."""
    found = {}
    for trace in _since_start(context, FUNCTION):
        for span in context.stack.telemetry.trace(trace["trace_id"]):
            if "faas.coldstart" in span["attributes"]:
                found[trace["trace_id"]] = bool(span["attributes"]["faas.coldstart"])
    return found


class ColdStart(Exercise):
    title = "Serverless: cold and warm starts"
    minutes = 25
    answer_usage = "TRACE_ID INIT_MS"

    def start(self, context: Context) -> list[str]:
        return [
            "Nothing to set up: invoke the catalog function yourself (step 2), its"
            " traces are what this lab reads."
        ]

    def read_answer(self, words: list[str]) -> list[str]:
        usage = "Answer with the cold invocation's trace id and the init time in ms."
        if len(words) != 2:
            raise LabError(f"{usage} (`obslab lab answer 13 0af7…319c 700`)")
        trace_id, ms = words[0].lower(), words[1].lower().removesuffix("ms")
        if not _TRACE_ID.fullmatch(trace_id):
            raise LabError(f"{trace_id!r} is not a trace id (32 hex digits). {usage}")
        try:
            value = float(ms)
        except ValueError:
            raise LabError(f"{words[1]!r} is not a number of milliseconds. {usage}") from None
        if not 0 < value < 600_000:
            raise LabError(f"{words[1]!r} ms is not an init time. {usage}")
        return [trace_id, f"{value:g}"]

    def check(self, context: Context) -> list[Step]:
        inits = [t["duration_ms"] for t in _since_start(context, INIT)]
        invocations = _invocations(context)
        answer = context.record.answer
        trace_id, ms = (answer[0], float(answer[1])) if answer else ("", 0.0)
        return [
            Step(
                "the function ran, its traces in the lab",
                bool(inits) and bool(invocations),
                "Invoke it with the lab's receiver as its OTLP endpoint (step 2): without"
                " OTEL_EXPORTER_OTLP_ENDPOINT its telemetry goes nowhere.",
            ),
            Step(
                "a cold invocation and a warm one",
                any(invocations.values()) and not all(invocations.values()),
                "Send the event more than once in one run (--repeat 3): each `obslab fn"
                " invoke` is a new execution environment, and only its first is cold.",
            ),
            Step(
                "you named a cold invocation's trace",
                invocations.get(trace_id, False),
                "Open the invocations' traces (obslab trace <id>): which one says"
                " faas.coldstart=True? Then `uv run obslab lab answer 13 TRACE_ID INIT_MS`."
                if trace_id
                else "Answer with `uv run obslab lab answer 13 TRACE_ID INIT_MS` (step 4).",
            ),
            Step(
                "the init phase took what you said",
                any(abs(ms - init) <= TOLERANCE * init for init in inits),
                "The init phase is not inside the invocation's trace: it is a trace of its"
                f" own, {INIT}, listed by obslab traces with its duration.",
            ),
        ]


LAB = ColdStart()
