"""Who is calling: short-lived service tokens between the shop's services.

Every call a :class:`obskit.ServiceClient` makes carries ``Authorization: Bearer
<service token>``, a JWT the caller signs for that one call with the key all the
services share (``OBSLAB_SERVICE_TOKEN_KEY``, HS256)::

    {"iss": "orders", "sub": "service:orders", "aud": "payments",
     "iat": 1764294000, "exp": 1764294060, "jti": "…"}

An internal service (``require_service_token``, which catalog, orders, inventory,
payments and notifications turn on; the public gateway checks users' OAuth2 tokens
instead) refuses any request without a valid token addressed to it: 401
``invalid_token``. Its health, metrics,
docs and admin routes stay as they are (the admin API has its own credential).

Why a service token rather than the user's token passed along:

* the notifications worker calls orders when an event arrives, which may be
  minutes after the order (a queue that backed up, retries with backoff): the
  user's 5-minute token may have expired, and the worker never had one;
* the user's token is for the public API (its audience): passing it inward would
  let any service that receives it replay it against any other. A service token
  names its one callee in ``aud`` and lives 60 s;
* the internal services need no key of the gateway's.

The limit of this design: one shared symmetric key means any service holding it
could mint a token naming any caller. Per-service key pairs (each callee checks the
caller's public key) or mTLS with workload identities (SPIFFE) close that gap; a
lab keeps to one key. The caller's name goes into the request's log line
(``caller``), so every request says who made it.
"""

from __future__ import annotations

import time
import uuid

import jwt
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from obskit._errors import error_response

ALGORITHMS = ["HS256"]
#: Routes a caller reaches without a service token: probes, scrapes, the docs, and
#: the admin API, which has a credential of its own.
OPEN_PREFIXES = ("/health/", "/metrics", "/admin/", "/docs", "/redoc", "/openapi.json")

log = structlog.get_logger("obskit.identity")


def service_token(key: str, caller: str, audience: str, ttl_s: int = 60) -> str:
    """A token saying ``caller`` calls ``audience``, good for ``ttl_s`` seconds."""
    now = int(time.time())
    claims = {
        "iss": caller,
        "sub": f"service:{caller}",
        "aud": audience,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, ALGORITHMS[0])


class ServiceIdentityMiddleware:
    """Refuses a request without a valid service token addressed to this service."""

    def __init__(self, app: ASGIApp, *, key: str, service: str, leeway_s: int = 5) -> None:
        self.app = app
        self.key = key
        self.service = service
        self.leeway_s = leeway_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise jwt.MissingRequiredClaimError("a bearer token")
            claims = jwt.decode(
                token.strip(),
                self.key,
                algorithms=ALGORITHMS,
                audience=self.service,
                leeway=self.leeway_s,
                options={"require": ["iss", "sub", "aud", "iat", "exp"]},
            )
        except jwt.InvalidTokenError as exc:
            log.info("identity.refused", reason=type(exc).__name__)
            refusal = error_response(
                401,
                "invalid_token",
                "Calls to this service need a service token (see obskit._identity).",
                headers={"www-authenticate": 'Bearer realm="obslab", error="invalid_token"'},
            )
            await refusal(scope, receive, send)
            return
        structlog.contextvars.bind_contextvars(caller=str(claims["iss"]))
        await self.app(scope, receive, send)
