"""The fault store: the faults of one service in Redis, shared by all its replicas.

A fault is a JSON document in the Redis hash ``obslab:chaos:<service>``, one field per
fault, so every replica of a service applies the same faults and the services stay
stateless.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from pydantic import ValidationError

from obskit._chaos.model import MAX_DURATION_S, Fault, FaultCreate

if TYPE_CHECKING:
    from redis.asyncio import Redis


class FaultStore:
    """The faults of one service in Redis: one hash, a field per fault."""

    def __init__(self, redis: Redis, service: str) -> None:
        self.redis = redis
        self.service = service
        self.key = f"obslab:chaos:{service}"

    async def add(self, spec: FaultCreate) -> Fault:
        now = time.time()
        fault = Fault(
            **spec.model_dump(),
            id=uuid.uuid4().hex[:12],
            service=self.service,
            created_at=now,
            expires_at=now + spec.duration_s,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, fault.id, fault.model_dump_json())
            # Each fault's own expiry is checked on read; this bounds the whole hash,
            # so even a fault no process ever reads again is gone within the hour.
            pipe.expire(self.key, MAX_DURATION_S)
            await pipe.execute()
        return fault

    async def active(self) -> list[Fault]:
        """The faults not yet expired, oldest first; expired or unreadable ones are dropped."""
        stored = await self.redis.hgetall(self.key)
        now = time.time()
        faults: list[Fault] = []
        stale: list[bytes | str] = []
        for field, raw in stored.items():
            try:
                fault = Fault.model_validate_json(raw)
            except ValidationError:
                stale.append(field)
                continue
            if fault.expires_at > now:
                faults.append(fault)
            else:
                stale.append(field)
        if stale:
            await self.redis.hdel(self.key, *stale)
        return sorted(faults, key=lambda f: f.created_at)

    async def remove(self, fault_id: str) -> bool:
        return bool(await self.redis.hdel(self.key, fault_id))

    async def clear(self) -> int:
        cleared = len(await self.active())
        await self.redis.delete(self.key)
        return cleared
