"""The simulated email provider: addresses never reach a log line in full."""

from __future__ import annotations

import pytest

from notifications.sender import mask_email


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        ("b@shop.test", "b***@shop.test"),
        ("no-at-sign", "***"),
        ("@example.com", "***"),
    ],
)
def test_mask_email_keeps_only_the_first_letter_and_the_domain(address: str, masked: str) -> None:
    """Only the first letter of the local part and the domain survive the mask."""
    assert mask_email(address) == masked
