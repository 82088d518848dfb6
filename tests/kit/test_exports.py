"""The kit's public surface."""

import obskit


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` is sorted, and every name in it exists: the exports are pinned here."""
    assert obskit.__all__ == sorted(obskit.__all__, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(obskit, name) for name in obskit.__all__)
    assert {"ServiceClient", "instrument_service", "redact", "Readiness"} <= set(obskit.__all__)
    assert {"ServiceTokenAuth", "service_token"} <= set(obskit.__all__)
    resilience = {
        "BreakerConfig",
        "Bulkhead",
        "BulkheadFull",
        "CircuitBreaker",
        "CircuitOpen",
        "DEADLINE_HEADER",
        "DEGRADED_HEADER",
        "DeadlineExceeded",
        "FALLBACKS",
        "RetryBudget",
        "RetryPolicy",
        "fallback_served",
        "set_retry_testing",
        "without_deadline",
    }
    assert resilience <= set(obskit.__all__)
