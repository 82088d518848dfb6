"""The inventory against real PostgreSQL and SQLite: all-or-nothing reservations, no overselling."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from inventory.main import create_app
from inventory.settings import Settings
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.auth import service_headers

#: The concurrency tests share ten pooled connections among up to fifty requests. The
#: pool's fail-fast 2 s wait would turn a slow, busy CI machine into 500s; these tests
#: pin correctness, not capacity.
PATIENT_POOL_S = 60.0


def reservations_count(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("obslab_inventory_reservations_total", {"outcome": outcome})
        or 0.0
    )


@pytest.fixture
async def inventory(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(Settings(database_url=database_url))) as client:
        yield client


async def available(client: httpx.AsyncClient, product_id: int) -> int:
    response = await client.get(f"/stock/{product_id}")
    assert response.status_code == 200
    return int(response.json()["available"])


def reservation(*items: tuple[int, int], order_id: str | None = None) -> dict[str, object]:
    return {
        "order_id": order_id or str(uuid.uuid4()),
        "items": [{"product_id": p, "quantity": q} for p, q in items],
    }


async def test_demo_products_are_stocked(inventory: httpx.AsyncClient) -> None:
    """An empty inventory stocks the twelve demo products with seed_stock units each."""
    assert [await available(inventory, i) for i in (1, 12)] == [1000, 1000]
    missing = await inventory.get("/stock/13")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "product_not_found"


async def test_put_sets_the_stock_of_any_product(inventory: httpx.AsyncClient) -> None:
    """PUT sets a stocked product's level and adds a product not stocked yet."""
    assert (await inventory.put("/stock/2", json={"available": 7})).json() == {
        "product_id": 2,
        "available": 7,
    }
    assert (await inventory.put("/stock/500", json={"available": 3})).status_code == 200
    assert [await available(inventory, i) for i in (2, 500)] == [7, 3]


async def test_reserve_then_release_restores_the_stock(inventory: httpx.AsyncClient) -> None:
    """A reservation takes the units and its release gives exactly them back."""
    reserved, released = reservations_count("reserved"), reservations_count("released")
    body = reservation((1, 2), (3, 5))
    created = await inventory.post("/reservations", json=body)
    assert created.status_code == 201
    assert created.json() == {
        "order_id": body["order_id"],
        "status": "reserved",
        "items": body["items"],
    }
    assert [await available(inventory, i) for i in (1, 3)] == [998, 995]

    release = await inventory.post(f"/reservations/{body['order_id']}/release")
    assert release.status_code == 200
    assert release.json()["status"] == "released"
    assert [await available(inventory, i) for i in (1, 3)] == [1000, 1000]
    assert reservations_count("reserved") == reserved + 1
    assert reservations_count("released") == released + 1


async def test_duplicate_lines_are_merged(inventory: httpx.AsyncClient) -> None:
    """Two lines of the same product are reserved, and returned, as one line of their sum."""
    response = await inventory.post("/reservations", json=reservation((4, 1), (2, 1), (4, 2)))
    assert response.json()["items"] == [
        {"product_id": 2, "quantity": 1},
        {"product_id": 4, "quantity": 3},
    ]
    assert await available(inventory, 4) == 997


async def test_reserve_is_idempotent_by_order_id(inventory: httpx.AsyncClient) -> None:
    """Reserving the same order again returns the first reservation (200) and takes nothing more."""
    body = reservation((5, 4))
    first = await inventory.post("/reservations", json=body)
    again = await inventory.post("/reservations", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert await available(inventory, 5) == 996


async def test_concurrent_repeats_of_one_order_reserve_once(database_url: str) -> None:
    """Ten simultaneous requests for one order reserve it once; all get that reservation."""
    body = reservation((6, 3))
    settings = Settings(database_url=database_url, db_pool_timeout_s=PATIENT_POOL_S)
    async with (
        serve_on_port(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=service_headers("inventory")) as client,
    ):
        answers = await asyncio.gather(
            *(client.post("/reservations", json=body) for _ in range(10))
        )
        assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
        assert {a.json()["order_id"] for a in answers} == {body["order_id"]}
        assert await available(client, 6) == 997


async def test_release_is_idempotent(inventory: httpx.AsyncClient) -> None:
    """Releasing twice gives the units back once."""
    body = reservation((7, 10))
    await inventory.post("/reservations", json=body)
    for _ in range(2):
        response = await inventory.post(f"/reservations/{body['order_id']}/release")
        assert response.status_code == 200
        assert response.json()["status"] == "released"
    assert await available(inventory, 7) == 1000


async def test_released_reservation_is_not_reserved_again(inventory: httpx.AsyncClient) -> None:
    """Posting a released order again is a 409 reservation_released, and takes no stock."""
    body = reservation((8, 1))
    await inventory.post("/reservations", json=body)
    await inventory.post(f"/reservations/{body['order_id']}/release")
    again = await inventory.post("/reservations", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "reservation_released"
    assert await available(inventory, 8) == 1000


async def test_a_reservation_is_read_by_its_order(inventory: httpx.AsyncClient) -> None:
    """GET /reservations/{order_id} says whether an order's stock is reserved or released
    (what orders' recovery looks up), and 404 for an order that reserved nothing."""
    body = reservation((9, 2))
    await inventory.post("/reservations", json=body)
    read = await inventory.get(f"/reservations/{body['order_id']}")
    assert read.status_code == 200 and read.json()["status"] == "reserved"
    await inventory.post(f"/reservations/{body['order_id']}/release")
    assert (await inventory.get(f"/reservations/{body['order_id']}")).json()["status"] == "released"
    unknown = await inventory.get(f"/reservations/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "reservation_not_found"


async def test_releasing_an_unknown_order_is_a_404(inventory: httpx.AsyncClient) -> None:
    """An order that reserved nothing has nothing to release."""
    response = await inventory.post(f"/reservations/{uuid.uuid4()}/release")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "reservation_not_found"


async def test_out_of_stock_reserves_nothing(inventory: httpx.AsyncClient) -> None:
    """When one line is short the whole reservation fails with its shortages and no stock moves."""
    await inventory.put("/stock/9", json={"available": 2})
    shortages = reservations_count("out_of_stock")
    body = reservation((1, 5), (9, 3), (4242, 1))
    response = await inventory.post("/reservations", json=body)

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "out_of_stock"
    assert error["details"] == [
        {"product_id": 9, "requested": 3, "available": 2},
        {"product_id": 4242, "requested": 1, "available": 0},
    ]
    assert [await available(inventory, i) for i in (1, 9)] == [1000, 2]
    assert reservations_count("out_of_stock") == shortages + 1
    # Nothing was stored either: the order can reserve once stock is back.
    await inventory.put("/stock/9", json={"available": 3})
    body["items"] = [{"product_id": 9, "quantity": 3}]
    assert (await inventory.post("/reservations", json=body)).status_code == 201


async def storm(url: str, product_id: int, stock: int, orders: int) -> None:
    """Fire ``orders`` one-unit reservations at once and check exactly ``stock`` succeed."""
    async with httpx.AsyncClient(
        base_url=url, timeout=60, headers=service_headers("inventory")
    ) as client:
        await client.put(f"/stock/{product_id}", json={"available": stock})
        levels: list[int] = []
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                levels.append(await available(client, product_id))

        watcher = asyncio.create_task(watch())
        answers = await asyncio.gather(
            *(
                client.post("/reservations", json=reservation((product_id, 1)))
                for _ in range(orders)
            )
        )
        done.set()
        await watcher

        codes = [a.status_code for a in answers]
        assert codes.count(201) == stock
        assert codes.count(409) == orders - stock
        assert all(
            a.json()["error"]["code"] == "out_of_stock" for a in answers if a.status_code == 409
        )
        assert await available(client, product_id) == 0
        assert all(level >= 0 for level in levels)


async def test_concurrent_orders_never_oversell_on_postgresql(database_url: str) -> None:
    """Fifty simultaneous one-unit orders for ten units in PostgreSQL: exactly ten succeed."""
    settings = Settings(database_url=database_url, db_pool_timeout_s=PATIENT_POOL_S)
    async with serve_on_port(create_app(settings)) as url:
        await storm(url, product_id=10, stock=10, orders=50)


async def test_concurrent_orders_never_oversell_on_sqlite(tmp_path) -> None:
    """The same fifty simultaneous orders against SQLite, the default database."""
    settings = Settings(data_dir=str(tmp_path), db_pool_timeout_s=PATIENT_POOL_S)
    async with serve_on_port(create_app(settings)) as url:
        await storm(url, product_id=10, stock=10, orders=50)
    assert (tmp_path / "inventory.sqlite3").exists()


VALID_ORDER = str(uuid.uuid4())


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": VALID_ORDER, "items": [{"product_id": 1, "quantity": 0}]},
        {"order_id": VALID_ORDER, "items": [{"product_id": 1, "quantity": -1}]},
        {"order_id": VALID_ORDER, "items": [{"product_id": 1, "quantity": 10**30}]},
        {"order_id": VALID_ORDER, "items": [{"product_id": 2_147_483_648, "quantity": 1}]},
        {"order_id": VALID_ORDER, "items": [{"product_id": 0, "quantity": 1}]},
        {"order_id": VALID_ORDER, "items": [{"product_id": 1}]},
        {"order_id": VALID_ORDER, "items": []},
        {"order_id": VALID_ORDER},
        {"items": [{"product_id": 1, "quantity": 1}]},
        {"order_id": "not-a-uuid", "items": [{"product_id": 1, "quantity": 1}]},
        {"order_id": VALID_ORDER, "items": [{"product_id": 1, "quantity": 1, "price": 5}]},
    ],
)
async def test_bad_reservation_is_a_422(inventory: httpx.AsyncClient, body: object) -> None:
    """Malformed reservations are refused with the JSON error body before touching stock."""
    response = await inventory.post("/reservations", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert await available(inventory, 1) == 1000


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/stock/0", None),
        ("GET", "/stock/99999999999", None),
        ("PUT", "/stock/1", {"available": -1}),
        ("PUT", "/stock/1", {"available": "many"}),
        ("POST", "/reservations/not-a-uuid/release", None),
    ],
)
async def test_bad_stock_requests_are_a_422(
    inventory: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    """Bad ids, bad uuids and negative stock are refused with the JSON error body."""
    response = await inventory.request(method, path, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_ready_checks_the_database(inventory: httpx.AsyncClient) -> None:
    """Readiness reports the inventory's one dependency, its database."""
    response = await inventory.get("/health/ready")
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
