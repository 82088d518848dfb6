"""Lab 10, caching and graceful degradation: ``start`` takes the catalog's Redis away
(a ``dependency_outage`` fault: every Redis call of catalog fails); the learner reads
products through the outage, sees the cache lookups fail while every read is still
answered from PostgreSQL, heals catalog and sees the cache hit again. The check reads
it from Prometheus since the lab started. Nothing fails for the user: no 5xx."""

from __future__ import annotations

from obslab.labkit import faults
from obslab.labkit.base import Context, Exercise, Step

FAULT = {"kind": "dependency_outage", "dependency": "redis", "duration_s": 900}
CACHE = 'obslab_cache_requests_total{service="catalog"'
#: "Hits again" is judged on the last few scrapes (every 5 s), after the outage.
RECENT = "20s"


class Caching(Exercise):
    title = "Caching: a cache outage, degraded gracefully"
    minutes = 25

    def start(self, context: Context) -> list[str]:
        context.record.setup = {"fault": faults.inject(context, "catalog", FAULT)}
        return ["The catalog's Redis cache is unreachable now (for 15 minutes)."]

    def check(self, context: Context) -> list[Step]:
        prometheus, started = context.stack.prometheus, context.record.started_at
        failed_lookups = prometheus.grown(f'{CACHE}, result="error"}}', started)
        server_errors = prometheus.grown(
            'http_server_request_duration_seconds_count{service=~"gateway|catalog",'
            ' http_response_status_code=~"5.."}',
            started,
        )
        faulty = prometheus.value('sum(obslab_chaos_active{service="catalog"})')
        hits = prometheus.value(f'sum(increase({CACHE}, result="hit"}}[{RECENT}]))')
        errors = prometheus.value(f'sum(increase({CACHE}, result="error"}}[{RECENT}]))')
        return [
            Step(
                "you read products while the cache was down, and its lookups failed",
                failed_lookups > 0,
                "Read some products (step 2): each read looks in the cache first.",
            ),
            Step(
                "every read was still answered: no 5xx from the gateway or catalog",
                server_errors == 0,
                "Something answered 5xx since the lab started: which service, which route?"
                " (`uv run obslab traces --errors`)",
            ),
            Step(
                "catalog is healed",
                faulty == 0,
                "Give catalog its cache back (step 4); Prometheus sees it within 5 seconds.",
            ),
            Step(
                "the cache hits again",
                hits > 0 and errors == 0,
                f"Read the same products again (step 4), twice: the first read fills the"
                f" cache, the second hits it. The check looks at the last {RECENT}.",
            ),
        ]

    def reset(self, context: Context) -> None:
        faults.remove(context, "catalog")


LAB = Caching()
