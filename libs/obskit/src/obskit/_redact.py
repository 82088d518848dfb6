"""Redaction of secrets, tokens and card numbers, for logs and anything else we emit.

A card number must never reach a log line, a span or a metric (PCI DSS). Redaction
works twice: by *key* (a field named ``password`` or ``card_number`` is hidden
whatever it holds) and by *value* (a Luhn-valid run of 13 to 19 digits, a bearer
token or a JWT is hidden wherever it appears, even inside a sentence).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"passw(or)?d|secret|token|authori[sz]ation|api[_-]?key|cookie|(^|_)card(_?number)?$|^pan$|cvc|cvv",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# 13 to 19 digits, optionally grouped by single spaces or dashes, as cards are written.
_CARD_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]+):([^@/\s]+)@")


def luhn_valid(digits: str) -> bool:
    """Return whether ``digits`` passes the Luhn checksum that every card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return REDACTED if luhn_valid(digits) else match.group(0)


def redact_text(text: str) -> str:
    """Hide card numbers, bearer/basic credentials, JWTs and URL passwords inside ``text``."""
    if len(text) < 13 and "://" not in text:
        return text  # too short to hold anything we hide: the common case, kept cheap
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    return _CARD_CANDIDATE.sub(_mask_card, text)


def is_secret_key(key: str) -> bool:
    """Return whether a field called ``key`` holds a secret whatever its value."""
    return _SECRET_KEY.search(key) is not None


def redact(value: Any, key: str = "") -> Any:
    """Return ``value`` with every secret hidden, walking into mappings and sequences."""
    if key and is_secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
