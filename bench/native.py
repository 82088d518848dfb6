"""How long ``obslab up`` takes to bring the whole native lab up, on free ports.

It runs the ``obslab`` command as ``make up`` does, in a temporary runtime folder:
once on fresh data (``initdb``, a new RabbitMQ node) and once more on the data
the first start left, which is what a person starting the lab again waits for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

from obslab.native.lab import LabSettings
from obslab.native.process import free_port

OBSLAB = Path(sysconfig.get_path("scripts")) / "obslab"


def time_native_lab() -> dict[str, float]:
    """Seconds for ``obslab up`` on fresh data, ``obslab up`` again, and ``obslab down``."""
    # Not a private temporary folder: PostgreSQL and RabbitMQ run as their own users.
    runtime = Path(tempfile.mkdtemp(prefix="obslab-bench-lab-"))
    runtime.chmod(0o755)
    ports = {name: free_port() for name in LabSettings.model_fields if name.endswith("_port")}
    env = {
        **os.environ,
        "OBSLAB_LAB_RUNTIME_DIR": str(runtime),
        "OBSLAB_LAB_GATEWAY_PORTS": json.dumps([free_port(), free_port()]),
        **{f"OBSLAB_LAB_{name.upper()}": str(port) for name, port in ports.items()},
    }

    def obslab(command: str) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            [str(OBSLAB), command], env=env, capture_output=True, text=True, timeout=400
        )
        if done.returncode != 0:
            raise RuntimeError(f"obslab {command} failed:\n{done.stdout}{done.stderr}")
        return time.perf_counter() - started

    times: dict[str, float] = {}
    try:
        times["up_fresh_s"] = obslab("up")
        times["down_s"] = obslab("down")
        times["up_again_s"] = obslab("up")
    finally:
        obslab("down")
        shutil.rmtree(runtime, ignore_errors=True)
    return times
