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


@pytest.mark.e2e
def test_a_service_token_opens_an_internal_service(lab: Lab) -> None:
    """``--service inventory`` prints a token inventory itself accepts; without one it
    refuses with 401."""
    stock = f"http://127.0.0.1:{lab.settings.inventory_port}/stock/1"
    assert httpx.get(stock, timeout=30).status_code == 401
    printed = lab.obslab("token", "--service", "inventory")
    assert printed.returncode == 0, printed.stderr
    headers = {"authorization": f"Bearer {printed.stdout.strip()}"}
    answer = httpx.get(stock, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["product_id"] == 1


def test_an_unknown_service_is_refused() -> None:
    """A service that takes no service token (or does not exist): exit 2, the list."""
    result = CliRunner().invoke(app, ["token", "--service", "gateway"])
    assert result.exit_code == 2
    assert "inventory" in result.output
    assert "Traceback" not in result.output


def test_a_service_token_names_its_one_callee(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed with OBSLAB_SERVICE_TOKEN_KEY, addressed to the service asked for, short-lived."""
    key = "k" * 32
    monkeypatch.setenv("OBSLAB_SERVICE_TOKEN_KEY", key)
    result = CliRunner().invoke(app, ["token", "--service", "payments"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), key, algorithms=["HS256"], audience="payments")
    assert claims["sub"] == "service:obslab"
    assert claims["exp"] - claims["iat"] <= 60
