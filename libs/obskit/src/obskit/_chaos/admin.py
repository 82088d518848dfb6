"""The chaos admin API: ``/admin/chaos/faults``, to add, list and clear faults.

A fault set through one replica's admin API applies there at once and on the others
within a refresh. The API is open only to a caller with the admin token
(``OBSLAB_ADMIN_TOKEN``), from an allowed network, not through a proxy.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from obskit._chaos.model import Fault, FaultCreate
from obskit._chaos.process import Chaos
from obskit._errors import DownstreamUnavailable, NotFound, ServiceError
from obskit._settings import ServiceSettings


def _refusal(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ServiceError:
    error = ServiceError(message, code=code, headers=headers)
    error.status_code = status
    return error


def require_admin(request: Request) -> None:
    """Let through only a caller with the admin token, from an allowed network.

    In this order: no token configured → 404 (the admin API is off); a request that
    came through a proxy or from outside ``admin_networks`` → 403; a missing or wrong
    ``Authorization: Bearer <token>`` → 401. The token is compared in constant time.
    """
    settings: ServiceSettings = request.app.state.settings
    if settings.admin_token is None:
        raise NotFound(
            "The admin API is off: set OBSLAB_ADMIN_TOKEN to turn it on.", code="admin_disabled"
        )
    # The edge never routes /admin; a forwarded request means a proxy was told to.
    if "forwarded" in request.headers or "x-forwarded-for" in request.headers:
        raise _refusal(403, "forbidden", "The admin API is not served through a proxy.")
    try:
        client = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        client = None
    if client is None or not any(client in network for network in settings.admin_networks):
        raise _refusal(403, "forbidden", "The admin API is not open to this network.")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = settings.admin_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise _refusal(
            401,
            "unauthorized",
            "Send the admin token as a bearer token.",
            {"www-authenticate": "Bearer"},
        )


async def _chaos(request: Request) -> AsyncIterator[Chaos]:
    """This process's chaos, for an admin call; a Redis failure in the call is a 503."""
    from redis.exceptions import RedisError

    chaos: Chaos = request.app.state.chaos
    try:
        yield chaos
    except (RedisError, OSError) as exc:
        raise DownstreamUnavailable(
            "The fault store (Redis) is unavailable: try again.",
            code="chaos_store_unavailable",
        ) from exc


ChaosDep = Annotated[Chaos, Depends(_chaos)]

# Not in the OpenAPI document: it is no part of the service's API, and a fuzzer
# reading that document must not find a switch to break the service.
admin_router = APIRouter(
    prefix="/admin/chaos", include_in_schema=False, dependencies=[Depends(require_admin)]
)


class FaultsCleared(BaseModel):
    cleared: int


@admin_router.get("/faults")
async def list_faults(chaos: ChaosDep) -> list[Fault]:
    await chaos.refresh()
    return chaos.faults


@admin_router.post("/faults", status_code=201)
async def create_fault(spec: FaultCreate, chaos: ChaosDep) -> Fault:
    fault = await chaos.store.add(spec)
    await chaos.refresh()  # this replica applies it now, the others within a refresh
    return fault


@admin_router.delete("/faults")
async def clear_faults(chaos: ChaosDep) -> FaultsCleared:
    cleared = await chaos.store.clear()
    await chaos.refresh()
    return FaultsCleared(cleared=cleared)


@admin_router.delete("/faults/{fault_id}", status_code=204)
async def delete_fault(fault_id: str, chaos: ChaosDep) -> Response:
    if not await chaos.store.remove(fault_id):
        raise NotFound(f"No active fault {fault_id}.", code="fault_not_found")
    await chaos.refresh()
    return Response(status_code=204)
