"""The chaos fault a lab's ``start`` hides and its ``reset`` takes away (labs 2, 7, 8,
10, 11), through the services' admin API as ``obslab chaos`` uses it."""

from __future__ import annotations

import contextlib
from typing import Any

from obslab.chaos.faults import Admin, ChaosError
from obslab.labkit.base import Context, LabError


def inject(context: Context, service: str, fault: dict[str, Any]) -> str:
    """Inject ``fault`` into every replica of ``service``; its id, for :func:`remove`."""
    admin = Admin.of_lab(context.settings)
    try:
        return str(admin.inject(service, fault)["id"])
    except ChaosError as exc:
        raise LabError(str(exc)) from exc
    finally:
        admin.close()


def remove(context: Context, service: str) -> None:
    """Remove the fault whose id ``start`` kept (``setup["fault"]``), if there is one."""
    fault = context.record.setup.get("fault")
    if not fault:
        return
    admin = Admin.of_lab(context.settings)
    # Expired, removed by the learner, or the lab was restarted since: nothing to undo.
    with contextlib.suppress(ChaosError):
        admin.remove(service, fault)
    admin.close()
