"""contracts: what the shop's services agree on, apart from the platform kit.

The payment card as it crosses gateway → orders → payments, and the order events
orders publishes and notifications consumes. They are the shop's domain, so they
live here and not in :mod:`obskit`, which any service could use; obskit keeps what
is generic (the Luhn check its log redaction needs, the broker's exchanges).
"""

from contracts._cards import CardBrand, PaymentCard, card_brand
from contracts._events import AnyOrderEvent, OrderEvent, OrderFailed, OrderPlaced

__all__ = [
    "AnyOrderEvent",
    "CardBrand",
    "OrderEvent",
    "OrderFailed",
    "OrderPlaced",
    "PaymentCard",
    "card_brand",
]
