"""The native lab driven through its CLI as ``make up`` runs it, on free ports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from obslab.native.lab import LabSettings
from tests.support.auth import auth_headers
from tests.support.backends import free_port

OBSLAB = str(Path(sys.executable).with_name("obslab"))
CARD = {"number": "4242424242424242", "expiry": "12/39", "cvc": "123"}


class Lab:
    def __init__(self, runtime: Path, otlp: str) -> None:
        ports = {
            name: free_port()
            for name, field in LabSettings.model_fields.items()
            if name.endswith("_port")
        }
        self.env = {
            **os.environ,
            "OBSLAB_LAB_RUNTIME_DIR": str(runtime),
            "OBSLAB_LAB_GATEWAY_PORTS": json.dumps([free_port(), free_port()]),
            **{f"OBSLAB_LAB_{name.upper()}": str(port) for name, port in ports.items()},
        }
        self.settings = LabSettings(_env_file=None, runtime_dir=runtime, **ports)
        self.edge = f"http://127.0.0.1:{ports['edge_port']}"
        self.prometheus = f"http://127.0.0.1:{ports['prometheus_port']}"
        self.otlp = otlp

    def obslab(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [OBSLAB, *args], env=self.env, capture_output=True, text=True, timeout=400
        )

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.obslab("status", "--json").stdout))

    def component(self, name: str) -> dict[str, Any]:
        return next(c for c in self.status()["components"] if c["name"] == name)


@contextmanager
def running_lab(otlp: str = "") -> Iterator[Lab]:
    """``obslab up`` (with ``--otlp`` when given) in a new runtime folder; ``obslab down`` after."""
    # Not pytest's tmp_path: its folders are private to root, and PostgreSQL and
    # RabbitMQ run as their own users.
    runtime = Path(tempfile.mkdtemp(prefix="obslab-lab-"))
    runtime.chmod(0o755)
    lab = Lab(runtime, otlp)
    started = lab.obslab("up", *(["--otlp", otlp] if otlp else []))
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield lab
    finally:
        lab.obslab("down")
        shutil.rmtree(runtime, ignore_errors=True)


def place_order(edge: str, product_id: int) -> httpx.Response:
    """One confirmed order of ``product_id`` through the edge, as the lab's demo client."""
    return httpx.post(
        f"{edge}/api/orders",
        headers=auth_headers(edge),
        timeout=30,
        json={"items": [{"product_id": product_id, "quantity": 1}], "card": CARD},
    )
