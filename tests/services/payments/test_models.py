"""The card model on its own: normalisation, brands, and what its repr hides."""

from __future__ import annotations

import pytest

from contracts import PaymentCard as CardIn


def card(number: str) -> CardIn:
    return CardIn.model_validate({"number": number, "expiry": "12/99", "cvc": "123"})


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "unknown"),
    ],
)
def test_brand_comes_from_the_prefix(number: str, brand: str) -> None:
    """The brand is read from the number's first digits."""
    assert card(number).brand == brand


def test_spaces_and_dashes_are_normalised() -> None:
    """A number written in groups is kept as its digits; only the last four are shown."""
    parsed = card("5555-5555 5555-4444")
    assert parsed.number.get_secret_value() == "5555555555554444"
    assert parsed.last4 == "4444"


def test_repr_hides_the_number_and_cvc() -> None:
    """Printing or logging the card by mistake shows neither its number nor its CVC."""
    shown = repr(card("4242424242424242")) + str(card("4242424242424242"))
    assert "4242424242424242" not in shown
    assert "123" not in shown
