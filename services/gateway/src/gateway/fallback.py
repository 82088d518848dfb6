"""The gateway's fallback for product reads: the last good answer catalog gave.

When catalog is down (unreachable, failing, too slow, or its breaker open), a
shopper can still browse: the gateway answers from the last answer catalog gave
to the same read, says so with ``X-Degraded: catalog-stale`` (and a ``degraded``
field in the product or the page), and counts it in ``obslab_fallbacks_total``.

Kept in this process, not in Redis. The gateway is otherwise stateless and has no
Redis of its own; a fallback that needs one more system would fail in the very
outages it is for (a Redis outage takes catalog's cache down with it). Each
replica keeps its own copy, filled by the traffic it serves, bounded in entries
and in age. Only reads fall back: an order is always priced by catalog itself,
never from a stale copy.
"""

from __future__ import annotations

import time
from collections import OrderedDict

#: The reason a stale answer gives, in ``X-Degraded`` and the body's ``degraded`` field.
CATALOG_STALE = "catalog-stale"


class LastKnownGood:
    """The latest good body per read, least recently used first out, each for ``max_age_s``."""

    def __init__(self, max_entries: int, max_age_s: float) -> None:
        self.max_entries, self.max_age_s = max_entries, max_age_s
        self._bodies: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def remember(self, key: str, body: bytes) -> None:
        self._bodies[key] = (time.monotonic(), body)
        self._bodies.move_to_end(key)
        while len(self._bodies) > self.max_entries:
            self._bodies.popitem(last=False)

    def forget(self, key: str) -> None:
        self._bodies.pop(key, None)

    def recall(self, key: str) -> bytes | None:
        """The body remembered for ``key``, unless it is too old to serve."""
        entry = self._bodies.get(key)
        if entry is None or time.monotonic() - entry[0] > self.max_age_s:
            return None
        self._bodies.move_to_end(key)
        return entry[1]
