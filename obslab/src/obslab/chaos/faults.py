"""The fault client: injects faults into the shop's services through each one's admin API
(``/admin/chaos/faults``, on the service's own port: the edge never routes it) with the
admin token, read from ``OBSLAB_ADMIN_TOKEN`` or else from the native lab's runtime folder
(``obslab up`` writes one there). The services' URLs are the lab's ports, which are also
the ports the compose stack publishes, so with ``OBSLAB_ADMIN_TOKEN`` set it drives that
stack too. A bad argument is refused (:class:`ChaosError`, exit code 2) before anything
is sent, so it changes nothing.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx

from obslab.native.lab import LabSettings
from obslab.topology import INTERNAL, SERVICES

#: The kinds of fault, as obskit._chaos.model.KINDS (tests/cli/test_chaos.py keeps the
#: two the same): importing the kit would load FastAPI and OpenTelemetry into every command.
KINDS = (
    "latency",
    "error",
    "abort",
    "cpu",
    "memory_leak",
    "slow_dependency",
    "dependency_outage",
    "worker_slowdown",
    "worker_crash",
)
MAX_DURATION_S = 3600
_DURATION = re.compile(r"^(\d+)(s|m|h)?$")


class ChaosError(Exception):
    """A refusal worth a clear message; ``exit_code`` 2 for bad arguments, 1 otherwise."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_duration(text: str) -> int:
    """``30s``, ``5m``, ``1h`` or plain seconds, as seconds (at most one hour)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ChaosError(f"Bad duration {text!r}: say 30s, 5m or 1h.", exit_code=2)
    seconds = int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2] or "s"]
    if not 1 <= seconds <= MAX_DURATION_S:
        raise ChaosError(f"Bad duration {text!r}: from 1s to 1h.", exit_code=2)
    return seconds


def check_service(service: str) -> str:
    if service not in SERVICES:
        raise ChaosError(f"Unknown service {service!r}: one of {', '.join(SERVICES)}.", exit_code=2)
    return service


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ChaosError(f"Unknown fault {kind!r}: one of {', '.join(KINDS)}.", exit_code=2)
    return kind


class Admin:
    """The admin APIs of the shop's services, with the admin token."""

    def __init__(self, token: str, urls: dict[str, str]) -> None:
        self.urls = urls
        self.http = httpx.Client(headers={"authorization": f"Bearer {token}"}, timeout=10)

    @classmethod
    def of_lab(cls, settings: LabSettings | None = None, url: str = "") -> Admin:
        """The lab's (or, with ``url``, one service's) admin APIs and token."""
        settings = settings or LabSettings()
        urls = {name: f"http://127.0.0.1:{settings.port_of(name)}" for name in INTERNAL} | {
            "gateway": f"http://127.0.0.1:{settings.gateway_ports[0]}"
        }
        if url:
            urls = dict.fromkeys(SERVICES, url.rstrip("/"))
        return cls(lab_token(settings), urls)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.urls[service]}/admin/chaos/faults{path}"
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ChaosError(f"{service} cannot be reached at {self.urls[service]}: {exc}") from exc
        if response.status_code == 422:
            raise ChaosError(f"{service} refused the fault: {_problems(response)}", exit_code=2)
        if response.is_error:
            raise ChaosError(f"{service} answered {response.status_code}: {_message(response)}")
        return response

    def inject(self, service: str, fault: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", service, "", json=fault).json())

    def faults(self, service: str) -> list[dict[str, Any]]:
        return list(self._call("GET", service, "").json())

    def clear(self, service: str) -> int:
        return int(self._call("DELETE", service, "").json()["cleared"])

    def remove(self, service: str, fault_id: str) -> None:
        """Remove one fault (ChaosError when it is gone already)."""
        self._call("DELETE", service, f"/{fault_id}")


def lab_token(settings: LabSettings) -> str:
    """``OBSLAB_ADMIN_TOKEN``, else the token ``obslab up`` wrote for the lab."""
    token = os.environ.get("OBSLAB_ADMIN_TOKEN", "")
    if token:
        return token
    path = settings.path("admin-token")
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ChaosError(
            f"No admin token: {path} is missing (is the lab up?) and OBSLAB_ADMIN_TOKEN is"
            " not set (the compose stack's token)."
        ) from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _problems(response: httpx.Response) -> str:
    try:
        details = response.json()["error"].get("details") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:200]
    return "; ".join(
        f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'fault'}: {d.get('msg', '')}"
        for d in details
    )
