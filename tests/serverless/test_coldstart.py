"""What a function's cold start imports: nothing that only a container uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from obskit._function import CONTAINER_ONLY

REPO = Path(__file__).resolve().parents[2]


def loaded_by_handler(service: str, tmp_path: Path, **env: str) -> set[str]:
    """Of CONTAINER_ONLY, what a fresh process has imported once the handler is ready."""
    probe = (
        f"import sys\nimport {service}.function as f\nf.handler.close()\n"
        f"print(' '.join(m for m in {CONTAINER_ONLY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        # SQLite in a folder of the test's own, and no Redis: the init phase still
        # completes (the catalog's cache is optional), which is all this needs.
        env={
            **os.environ,
            "OBSLAB_DATA_DIR": str(tmp_path),
            "OBSLAB_REDIS_URL": "redis://127.0.0.1:9/0",
            "OBSLAB_LOG_LEVEL": "WARNING",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("service", ["catalog", "payments"])
def test_the_handler_loads_nothing_only_a_container_uses(service: str, tmp_path: Path) -> None:
    """Importing a handler (the whole init phase) loads none of uvicorn, httpx, its
    instrumentation or stamina; the bench's eager switch loads them all."""
    assert loaded_by_handler(service, tmp_path) == set()
    eager = loaded_by_handler(service, tmp_path, OBSLAB_EAGER_IMPORTS="true")
    assert eager == set(CONTAINER_ONLY)
