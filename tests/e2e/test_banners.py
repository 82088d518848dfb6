"""No version banners: the lab's services (uvicorn) send no Server header, nginx no version."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.lab import Lab

pytestmark = pytest.mark.e2e


def test_no_server_banner_from_services_or_edge(lab: Lab) -> None:
    """Each service answers without ``Server``; the edge says only ``nginx``, with the
    security headers on its answers as on the services'."""
    ports = json.loads(lab.env["OBSLAB_LAB_GATEWAY_PORTS"])
    ports += [lab.settings.port_of(s) for s in ("catalog", "orders", "payments")]
    for port in ports:
        response = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=30)
        assert "server" not in response.headers, port
        assert response.headers["x-content-type-options"] == "nosniff", port
    edge = httpx.get(f"{lab.edge}/api/products", timeout=30)
    assert edge.headers["server"] == "nginx"
    assert edge.headers["x-frame-options"] == "DENY"
