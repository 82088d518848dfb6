"""No secret in anything the shop emits: orders placed through the lab's edge with a known
card and token, then every log file, every span and log record of the lab's OTLP store,
and every ``/metrics`` (with exemplars) searched for them."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from gateway.settings import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_USER, DEV_USER_PASSWORD
from tests.support.auth import fetch_token
from tests.support.backends import wait_for
from tests.support.lab import Lab

pytestmark = pytest.mark.e2e

#: A card only this test uses (Luhn-valid, accepted by the simulated bank), so a hit
#: cannot come from another test; its last four digits may appear (as card_last4).
CARD = {"number": "4000056655665556", "expiry": "12/39", "cvc": "737"}
#: The same number with one digit changed: Luhn-invalid, refused with 422 at the gateway.
BAD_CARD = {**CARD, "number": "4000056655665557"}


def store_text(path: Path) -> str:
    """Every span and log record the lab's OTLP receiver kept, as one text."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')
        )
    finally:
        db.close()


def services_logged(path: Path, trace_id: str) -> set[str]:
    """The services that sent log records of ``trace_id`` to the store."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT DISTINCT service FROM logs WHERE trace_id = ?", (trace_id,))
        return {row[0] for row in rows}
    finally:
        db.close()


def metrics_text(lab: Lab) -> str:
    """Every service's /metrics in the OpenMetrics format, the one that carries exemplars."""
    ports = json.loads(lab.env["OBSLAB_LAB_GATEWAY_PORTS"])  # not in lab.settings
    ports += [lab.settings.port_of(s) for s in ("catalog", "orders", "inventory", "payments")]
    ports.append(lab.settings.port_of("notifications"))
    headers = {"accept": "application/openmetrics-text; version=1.0.0"}
    texts = [
        httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=30).text
        for port in ports
    ]
    assert all("# {" in t for t in texts[:1]), "the gateway's metrics carry no exemplar"
    return "\n".join(texts)


def test_no_card_token_or_secret_in_logs_traces_or_metrics(lab: Lab) -> None:
    """Neither the card number, a bearer or service token, the client secret nor the demo
    password appears in any log line, span, OTLP log record, metric or exemplar."""
    token = fetch_token(lab.edge)
    user_token = httpx.post(
        f"{lab.edge}/api/auth/token",
        data={"grant_type": "password", "username": DEV_USER, "password": DEV_USER_PASSWORD},
        timeout=30,
    ).json()["access_token"]
    auth = {"authorization": f"Bearer {token}"}
    order = {"items": [{"product_id": 5, "quantity": 1}], "card": CARD, "email": "h@example.com"}

    placed = httpx.post(f"{lab.edge}/api/orders", json=order, headers=auth, timeout=30)
    assert placed.status_code == 201, placed.text
    bad = httpx.post(
        f"{lab.edge}/api/orders", json={**order, "card": BAD_CARD}, headers=auth, timeout=30
    )
    assert bad.status_code == 422, bad.text
    assert BAD_CARD["number"] not in bad.text
    # A token refused (one character changed) is logged as refused, never itself.
    forged = {"authorization": f"Bearer {token[:-2]}xx"}
    assert httpx.post(f"{lab.edge}/api/orders", json=order, headers=forged).status_code == 401
    read = f"{lab.edge}/api/orders/{placed.json()['id']}"
    user = {"authorization": f"Bearer {user_token}"}
    wait_for(
        lambda: httpx.get(read, headers=user, timeout=30).json()["notified_at"] is not None,
        60,
        "order notified",
    )
    store = lab.settings.path("data", "telemetry.sqlite3")
    trace_id = placed.headers["x-trace-id"]
    # The worker's log records of this order reached the store: the whole path is in.
    wait_for(lambda: "notifications" in services_logged(store, trace_id), 60, "worker logs")

    emitted = {
        "log files": "\n".join(
            path.read_text(errors="replace")
            for folder in (lab.settings.path("logs"), lab.settings.path("nginx", "logs"))
            for path in folder.glob("*.log")
        ),
        "OTLP store": store_text(store),
        "metrics": metrics_text(lab),
    }
    basic = base64.b64encode(f"{DEV_CLIENT_ID}:{DEV_CLIENT_SECRET}".encode()).decode()
    secrets = {
        "card number": CARD["number"],
        "invalid card number": BAD_CARD["number"],
        "cvc": f'"{CARD["cvc"]}"',
        "client token": token,
        "client token's signature": token.rsplit(".", 1)[1],
        "user token": user_token,
        # Every JWT starts so (``{"alg":`` in base64): no service token either, which
        # each call signs anew.
        "any JWT": "eyJhbGciOi",
        "client secret": DEV_CLIENT_SECRET,
        "client credentials (Basic)": basic,
        "demo password": DEV_USER_PASSWORD,
    }
    # What is searched is what these requests left: their log lines, their trace.
    assert "auth.token_issued" in emitted["log files"]
    assert "auth.token_refused" in emitted["log files"]
    assert trace_id in emitted["OTLP store"]
    found = [
        f"{secret} in {where}"
        for where, text in emitted.items()
        for secret, value in secrets.items()
        if value in text
    ]
    assert not found, found
