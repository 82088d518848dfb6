"""The worker's HTTP API: which notifications were sent for an order (for tests and labs)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from notifications.models import NotificationRead
from notifications.store import NotificationStore
from obskit import ErrorBody

router = APIRouter(tags=["notifications"], responses={422: {"model": ErrorBody}})


async def get_store(request: Request) -> AsyncIterator[NotificationStore]:
    async with request.app.state.sessions() as session:
        yield NotificationStore(session)


StoreDep = Annotated[NotificationStore, Depends(get_store)]


@router.get("/notifications", response_model=list[NotificationRead])
async def list_notifications(
    store: StoreDep, order_id: Annotated[uuid.UUID, Query()]
) -> list[NotificationRead]:
    """The notifications sent about one order, oldest first."""
    return await store.for_order(order_id)
