"""The fault model: the kinds of fault, what each takes, and how long a fault lasts.

It imports only pydantic and the standard library: what a fault is, apart from how
and where it acts. The kinds, where each acts, and its parameters (``probability`` is
1 unless given):

=====================  ==========================================  =======================
kind                   what happens                                parameters
=====================  ==========================================  =======================
``latency``            a pause before the handler runs             ``ms``, ``jitter_ms``
``error``              an error answer instead of the handler      ``status``
``abort``              the connection closed mid-answer
``cpu``                a busy loop that blocks the event loop      ``ms`` per request
``memory_leak``        each request keeps ``kb``, up to ``cap_mb``  ``kb``, ``cap_mb``
``slow_dependency``    a pause before each database query or       ``dependency``, ``ms``,
                       Redis call                                  ``jitter_ms``
``dependency_outage``  those calls fail as if it were down         ``dependency``
``worker_slowdown``    a pause before each broker message          ``ms``, ``jitter_ms``
``worker_crash``       the process exits on a message: the         (the supervisor restarts
                       supervisor restarts it, it crashes again     it: a crash loop)
=====================  ==========================================  =======================

Every fault expires (``duration_s``: 5 min unless given, 1 h at most), so nothing
stays broken by accident. The HTTP and dependency kinds can be limited to one
``route`` template (``/charges``, ``/products/{product_id}``); a worker fault's
``route`` is an event type, the message's routing key (``order.failed``).
"""

from __future__ import annotations

import random
from typing import Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "latency",
    "error",
    "abort",
    "cpu",
    "memory_leak",
    "slow_dependency",
    "dependency_outage",
    "worker_slowdown",
    "worker_crash",
]
KINDS: tuple[str, ...] = get_args(FaultKind)
HTTP_KINDS = frozenset({"latency", "error", "abort", "cpu", "memory_leak"})
DEPENDENCY_KINDS = frozenset({"slow_dependency", "dependency_outage"})
WORKER_KINDS = frozenset({"worker_slowdown", "worker_crash"})
#: Kinds that pause for ``ms`` (plus up to ``jitter_ms``), so need an ``ms``.
TIMED_KINDS = frozenset({"latency", "cpu", "slow_dependency", "worker_slowdown"})

DEFAULT_DURATION_S = 300
MAX_DURATION_S = 3600


class FaultCreate(BaseModel):
    """A fault to inject: the body of ``POST /admin/chaos/faults``."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    #: Only requests to this route template (HTTP and dependency kinds), or messages of
    #: this event type (worker kinds: ``order.placed``); everything when unset.
    route: str | None = Field(
        default=None, pattern=r"^(/[A-Za-z0-9_\-./{}]*|[a-z][a-z0-9_.]*)$", max_length=200
    )
    #: The share of requests, queries or messages the fault hits.
    probability: float = Field(default=1.0, gt=0, le=1)
    ms: int = Field(default=0, ge=0, le=60_000)
    #: A uniform random extra of 0 to ``jitter_ms`` on top of ``ms``.
    jitter_ms: int = Field(default=0, ge=0, le=60_000)
    #: The answer of an ``error`` fault.
    status: int = Field(default=503, ge=400, le=599)
    dependency: Literal["database", "redis"] | None = None
    #: What each request keeps, and where a ``memory_leak`` stops growing.
    kb: int = Field(default=256, ge=1, le=10_240)
    cap_mb: int = Field(default=64, ge=1, le=1024)
    duration_s: int = Field(default=DEFAULT_DURATION_S, ge=1, le=MAX_DURATION_S)

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        if self.kind in TIMED_KINDS and self.ms == 0:
            raise ValueError(f"a {self.kind} fault needs ms > 0")
        if self.kind == "cpu" and self.ms > 5_000:
            raise ValueError("a cpu fault burns at most 5000 ms per request")
        if self.kind in DEPENDENCY_KINDS and self.dependency is None:
            raise ValueError(f"a {self.kind} fault needs a dependency: database or redis")
        if self.kind not in DEPENDENCY_KINDS and self.dependency is not None:
            raise ValueError(f"a {self.kind} fault takes no dependency")
        if self.route is None:
            return self
        if self.kind in HTTP_KINDS | DEPENDENCY_KINDS and not self.route.startswith("/"):
            raise ValueError(f"a {self.kind} fault's route is a path template: /charges")
        if self.kind in WORKER_KINDS and self.route.startswith("/"):
            raise ValueError(f"a {self.kind} fault's route is an event type: order.placed")
        return self


class Fault(FaultCreate):
    """A fault as stored and listed: what was asked, plus its id, service and expiry."""

    id: str
    service: str
    #: Seconds since the epoch (every replica compares them with its own clock).
    created_at: float
    expires_at: float

    def delay_s(self) -> float:
        return (self.ms + random.uniform(0, self.jitter_ms)) / 1000

    def hits(self) -> bool:
        return self.probability >= 1 or random.random() < self.probability
