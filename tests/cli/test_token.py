"""``obslab token``: a bearer token for the lab's demo client, from the edge."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from obslab.cli import app
from tests.support.backends import free_port
from tests.support.lab import Lab


def test_without_a_lab_it_says_so() -> None:
    """Nothing listening at the URL: exit 1 and a hint, no traceback."""
    result = CliRunner().invoke(app, ["token", "--url", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "is the lab up?" in result.output


@pytest.mark.e2e
def test_prints_a_token_the_edge_accepts(lab: Lab) -> None:
    """The token printed alone places an order's read through the edge; ``--scope`` and
    ``--json`` ask for less and show it."""
    printed = lab.obslab("token")
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    products = httpx.get(f"{lab.edge}/api/products/1", timeout=30)
    assert products.status_code == 200  # anonymous
    headers = {"authorization": f"Bearer {token}"}
    missing = httpx.get(
        f"{lab.edge}/api/orders/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=headers
    )
    assert missing.status_code == 404  # past the token check: the order does not exist

    narrow = lab.obslab("token", "--scope", "orders:read", "--json")
    assert narrow.returncode == 0, narrow.stderr
    assert json.loads(narrow.stdout)["scope"] == "orders:read"
