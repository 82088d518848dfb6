"""The native lab, run exactly as ``make up`` runs it, with the test as its OTLP collector."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from obslab.native.process import group_alive, port_open
from tests.support.auth import auth_headers
from tests.support.backends import wait_for
from tests.support.lab import Lab, place_order, running_lab
from tests.support.otlp import OTLPReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def otlp() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def lab(otlp: OTLPReceiver) -> Iterator[Lab]:
    """A lab of this module's own: its tests kill processes and finally take it down."""
    with running_lab(otlp.endpoint) as started:
        yield started


def test_every_component_is_healthy_and_every_target_up(lab: Lab) -> None:
    """After `obslab up`, status says every component is healthy and Prometheus scrapes
    every target: services, nginx, RabbitMQ, Redis, itself and Alertmanager."""
    status = lab.status()
    assert status["running"] and status["mode"] == "native"
    assert {c["name"]: c["health"] for c in status["components"]} == {
        c["name"]: "healthy" for c in status["components"]
    }
    assert {"gateway-1", "gateway-2", "nginx", "prometheus", "alertmanager", "notifications"} <= {
        c["name"] for c in status["components"]
    }

    def all_up() -> bool:
        targets = httpx.get(f"{lab.prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        return all(t["health"] == "up" for t in targets) and jobs >= {
            "services",
            "nginx",
            "rabbitmq",
            "redis",
            "prometheus",
            "alertmanager",
        }

    wait_for(all_up, 60, "every Prometheus target up")


def test_orders_through_the_edge_leave_exemplars_of_their_traces(
    lab: Lab, otlp: OTLPReceiver
) -> None:
    """Orders placed through nginx are confirmed and notified, and the gateway's latency
    histogram in Prometheus holds exemplars whose trace ids are traces we received."""
    responses = [place_order(lab.edge, product_id) for product_id in (1, 2, 3)]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert [r.json()["status"] for r in responses] == ["confirmed"] * 3  # stock and payment
    trace_ids = {r.headers["x-trace-id"] for r in responses}

    def notified(order_id: str) -> bool:
        read = httpx.get(f"{lab.edge}/api/orders/{order_id}", headers=auth_headers(lab.edge))
        return read.json()["notified_at"] is not None

    for response in responses:
        wait_for(lambda r=response: notified(r.json()["id"]), 60, "order notified")

    def exemplar_trace_ids() -> set[str]:
        now = time.time()
        found = httpx.get(
            f"{lab.prometheus}/api/v1/query_exemplars",
            params={
                "query": 'http_server_request_duration_seconds_bucket{service="gateway"}',
                "start": now - 600,
                "end": now,
            },
        ).json()["data"]
        return {e["labels"]["trace_id"] for series in found for e in series["exemplars"]}

    wait_for(lambda: bool(trace_ids & exemplar_trace_ids()), 60, "exemplars of our orders")
    ours = trace_ids & exemplar_trace_ids()
    for trace_id in ours:
        spans = otlp.wait_for_trace(trace_id, {"gateway", "orders"}, timeout=30)
        assert {span.service for span in spans} >= {"gateway", "orders"}


def test_a_killed_gateway_replica_costs_no_request_and_comes_back(lab: Lab) -> None:
    """Steady reads through nginx all succeed while one gateway replica is killed with
    SIGKILL (nginx retries them on the other); the supervisor restarts the replica and
    status shows the restart."""
    failures: list[str] = []
    served = 0
    done = threading.Event()

    def traffic() -> None:
        nonlocal served
        with httpx.Client(base_url=lab.edge, timeout=10) as client:
            while not done.is_set():
                response = client.get("/api/products")
                served += 1
                # Steady, not flat out: well under the gateway's rate limit per client.
                time.sleep(0.02)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        wait_for(lambda: served >= 20, 30, "traffic before the kill")
        victim = lab.component("gateway-1")
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(
            lambda: lab.component("gateway-1")["restarts"] == victim["restarts"] + 1,
            30,
            "the replica restarted",
        )
        wait_for(
            lambda: lab.component("gateway-1")["health"] == "healthy",
            60,
            "the replica healthy again",
        )
        after = served
        wait_for(lambda: served >= after + 20, 30, "traffic after the restart")
    finally:
        done.set()
        worker.join()
    assert failures == []


def test_up_again_is_harmless(lab: Lab) -> None:
    """A second `obslab up` changes nothing and says the lab is running."""
    before = json.loads(lab.settings.path("state.json").read_text())["supervisor_pid"]
    again = lab.obslab("up")
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert json.loads(lab.settings.path("state.json").read_text())["supervisor_pid"] == before


def test_up_after_a_killed_supervisor_cleans_up_and_starts(lab: Lab) -> None:
    """After the supervisor dies by SIGKILL, its processes are orphans on the lab's ports:
    the next `obslab up` stops them and starts the lab again."""
    state = json.loads(lab.settings.path("state.json").read_text())
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    orphan = state["components"]["orders"]["pid"]
    wait_for(lambda: not lab.status()["running"], 10, "status to see the supervisor gone")
    assert group_alive(orphan)

    started = lab.obslab("up", "--otlp", lab.otlp)
    assert started.returncode == 0, started.stdout + started.stderr
    assert not group_alive(orphan)
    assert all(c["health"] == "healthy" for c in lab.status()["components"])
    assert place_order(lab.edge, 4).status_code == 201


def test_logs_shows_one_component(lab: Lab) -> None:
    """`obslab logs NAME --no-follow` prints that component's log; an unknown name is an error."""
    shown = lab.obslab("logs", "orders", "--no-follow")
    assert shown.returncode == 0 and "http.request" in shown.stdout
    unknown = lab.obslab("logs", "nope", "--no-follow")
    assert unknown.returncode == 2 and "orders" in unknown.stderr


def test_down_leaves_nothing_of_ours_running(lab: Lab) -> None:
    """`obslab down` stops every process the lab started and frees every port, a
    workshop lab's own service (lab 5's, left running) included."""
    workshop = lab.obslab("lab", "start", "5")
    assert workshop.returncode == 0, workshop.stdout + workshop.stderr
    state = json.loads(lab.settings.path("state.json").read_text())
    pids = [state["supervisor_pid"]] + [c["pid"] for c in state["components"].values()]
    pids.append(int(lab.settings.path("labs", "05", "reviews.pid").read_text()))
    stopped = lab.obslab("down")
    assert stopped.returncode == 0, stopped.stderr
    assert [pid for pid in pids if group_alive(pid)] == []
    ports = [
        int(v) for k, v in lab.env.items() if k.startswith("OBSLAB_LAB_") and k.endswith("_PORT")
    ]
    assert [port for port in ports if port_open(port)] == []
    assert lab.status()["running"] is False
