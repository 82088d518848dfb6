"""The gateway against its own OpenAPI schema: generated requests, over the whole chain.

Schemathesis turns the schema into Hypothesis strategies and sends what they
generate, valid (positive) and invalid (negative), to every operation. Whatever
it sends, the gateway must answer without a 5xx and with a status, content type
and body its schema documents. The schema is what a client is promised, so a
route that answers something undocumented fails here. Every request carries a
valid bearer token (with both scopes), so the fuzzing reaches past the token check
into the order routes; the refusals of bad tokens are pinned in test_auth.py.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.main import create_app
from gateway.settings import Settings
from tests.support.apps import serve_on_port
from tests.support.auth import minted_headers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(schema: schemathesis.BaseSchema, base_url: str, headers: dict[str, str]) -> None:
    """Send up to 30 generated requests per operation and mode, checking every answer."""
    for result in schema.get_all_operations():
        operation = result.ok()
        takes_input = bool(operation.body) or any(operation.iter_parameters())
        # There is no invalid call to an operation that takes nothing.
        modes = list(GenerationMode) if takes_input else [GenerationMode.POSITIVE]
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=30,
                deadline=None,  # over real HTTP and real databases, times vary
                derandomize=True,  # the same cases every run: a failure is reproducible
                database=None,  # and nothing is replayed from an earlier run
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

            check()


def place_orders(schema: schemathesis.BaseSchema, base_url: str, headers: dict[str, str]) -> None:
    """Send the orders that random data almost never hits, and check those answers too.

    A generated order rarely has a valid card number and only known products, so
    the confirmed, declined and out-of-stock answers are asked for on purpose.
    """
    create = schema["/api/orders"]["POST"]
    card = {"number": "4242424242424242", "expiry": "12/49", "cvc": "123"}
    all_stock = {"items": [{"product_id": 12, "quantity": 100}], "card": card}
    declined = {**all_stock, "card": {**card, "number": "4000000000000002"}}
    for body, status in [(declined, 402), (all_stock, 201), (all_stock, 409)]:
        response = create.Case(body=body).call_and_validate(
            base_url=base_url, headers=headers, checks=CHECKS
        )
        assert response.status_code == status, response.text
        if status == 201:
            order = {"order_id": response.json()["id"]}
            read = schema["/api/orders/{order_id}"]["GET"].Case(path_parameters=order)
            answer = read.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
            assert answer.status_code == 200


# The services run in this process and draw span ids from ``random`` while Hypothesis
# generates; Hypothesis notices and warns, though its cases do not depend on it.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
# A hang (a request that never gets an answer) fails the run here, not at the suite's limit.
@pytest.mark.timeout(180)
async def test_gateway_answers_as_its_schema_says(catalog_url: str, orders_url: str) -> None:
    """No generated request gets a 5xx, and every answer matches the documented schema."""
    settings = Settings(catalog_url=catalog_url, orders_url=orders_url)
    app = create_app(settings)
    schema = schemathesis.openapi.from_dict(app.openapi())
    headers = minted_headers(settings)
    async with serve_on_port(app) as base_url:
        # Schemathesis calls synchronously: from a thread, so this loop keeps serving.
        await asyncio.to_thread(place_orders, schema, base_url, headers)
        await asyncio.to_thread(fuzz, schema, base_url, headers)
