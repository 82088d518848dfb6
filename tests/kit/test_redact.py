"""Redaction of card numbers, tokens and secrets."""

import pytest

from obskit import REDACTED, luhn_valid, redact, redact_text


@pytest.mark.parametrize(
    "card", ["4242424242424242", "4242 4242 4242 4242", "4000-0000-0000-0002", "378282246310005"]
)
def test_card_numbers_are_hidden_inside_text(card: str) -> None:
    """A Luhn-valid card number is hidden wherever it appears, however it is grouped."""
    assert redact_text(f"charge failed for {card} today") == f"charge failed for {REDACTED} today"


def test_numbers_that_are_not_cards_stay() -> None:
    """Long numbers failing the Luhn check (order numbers, timestamps) are kept."""
    assert not luhn_valid("4242424242424241")
    assert redact_text("order 4242424242424241 at 1795820653") == (
        "order 4242424242424241 at 1795820653"
    )


def test_tokens_and_url_passwords_are_hidden() -> None:
    """Bearer tokens, JWTs and passwords in URLs do not survive redaction."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    text = f"Authorization: Bearer abc.def sent {jwt} to amqp://guest:s3cret@host:5672/"
    hidden = redact_text(text)
    assert "abc.def" not in hidden and jwt not in hidden and "s3cret" not in hidden
    assert "amqp://guest:[REDACTED]@host" in hidden


def test_secret_keys_are_hidden_whatever_they_hold() -> None:
    """Fields named like secrets are hidden, nested ones too; harmless fields stay."""
    event = {"password": "hunter2", "card": {"number": "1", "cvc": "123"}, "card_last4": "4242"}
    assert redact(event) == {
        "password": REDACTED,
        "card": REDACTED,
        "card_last4": "4242",
    }
    assert redact({"items": [{"api_key": "k"}], "quantity": 3}) == {
        "items": [{"api_key": REDACTED}],
        "quantity": 3,
    }
