"""What importing the kit loads: a service pays only for the clients it uses."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import pytest

import obskit
from obskit._chaos import model

#: The clients behind obskit's lazy exports; each costs megabytes of memory at start.
HEAVY = ("sqlalchemy", "asyncpg", "redis", "aio_pika")


def loaded_after(code: str) -> set[str]:
    """The heavy packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.split())


def test_an_instrumented_app_loads_no_database_cache_or_broker_client() -> None:
    """Importing obskit and instrumenting an app (all a stateless service like the
    gateway needs of the kit) imports none of SQLAlchemy, asyncpg, redis or aio-pika."""
    code = (
        "from fastapi import FastAPI\n"
        "import obskit\n"
        "settings = obskit.ServiceSettings(service_name='t')\n"
        "app = FastAPI(telemetry=obskit.fastapi_telemetry(settings))\n"
        "obskit.instrument_service(app, settings)\n"
        "obskit.ServiceClient('peer', 'http://127.0.0.1:9', obskit.ServiceSettings())"
    )
    assert loaded_after(code) == set()


def test_a_lazy_export_is_imported_on_first_use() -> None:
    """``obskit.open_database`` is there when asked for, and only then loads SQLAlchemy."""
    assert loaded_after("import obskit") == set()
    assert "sqlalchemy" in loaded_after("import obskit\nobskit.open_database")


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    """The lazy lookup does not swallow typos: a missing name raises AttributeError."""
    with pytest.raises(AttributeError, match="no_such_thing"):
        obskit.no_such_thing  # noqa: B018 -- the lookup is the test


def test_the_fault_model_imports_only_pydantic_and_the_standard_library() -> None:
    """The module of the fault kinds (``obskit._chaos.model``) imports nothing but pydantic
    and the standard library."""
    tree = ast.parse(inspect.getsource(model))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {name.partition(".")[0] for name in imported} - sys.stdlib_module_names == {"pydantic"}
