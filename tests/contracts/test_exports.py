"""The contracts' public surface."""

import contracts


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` is sorted, and every name in it exists: the exports are pinned here."""
    assert contracts.__all__ == sorted(contracts.__all__)
    assert all(hasattr(contracts, name) for name in contracts.__all__)
    assert set(contracts.__all__) == {
        "AnyOrderEvent",
        "CardBrand",
        "OrderEvent",
        "OrderFailed",
        "OrderPlaced",
        "PaymentCard",
        "card_brand",
    }
