"""Recorded API Gateway events, and the same requests over HTTP, for the function tests.

The events under ``services/<service>/events/`` are HTTP API (payload 2.0) events
as API Gateway sends them, without an ``Authorization`` header: a service token
lives 60 s, so each test signs a fresh one, as a calling service would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

import obskit
from tests.support.auth import service_headers

SERVICES = Path(__file__).resolve().parents[2] / "services"


def recorded(service: str, name: str) -> dict[str, Any]:
    """The recorded event ``services/<service>/events/<name>.json``, signed for ``service``."""
    event: dict[str, Any] = json.loads((SERVICES / service / "events" / f"{name}.json").read_text())
    event["headers"] = {**event["headers"], **service_headers(service)}
    return event


def over_http(client: TestClient, event: dict[str, Any]) -> tuple[int, Any]:
    """Send the event's request to the container app; its status and JSON body."""
    path, query = event["rawPath"], event["rawQueryString"]
    response = client.request(
        event["requestContext"]["http"]["method"],
        f"{path}?{query}" if query else path,
        headers=event["headers"],
        content=event.get("body"),
    )
    return response.status_code, response.json()


def invoke(function: obskit.LambdaFunction[Any], event: dict[str, Any]) -> tuple[int, Any]:
    """Invoke the function as Lambda would; its status and JSON body."""
    response = function(event, obskit.LocalContext(function.name))
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def without(body: Any, *volatile: str) -> Any:
    """``body`` without the fields, at any depth, that differ between two runs of the same
    requests (new ids, timestamps)."""
    if isinstance(body, dict):
        return {k: without(v, *volatile) for k, v in body.items() if k not in volatile}
    if isinstance(body, list | tuple):
        return type(body)(without(item, *volatile) for item in body)
    return body
