"""Security headers on every answer, and CORS with an explicit allow-list.

:class:`SecurityHeadersMiddleware` is plain ASGI and the outermost layer a service
adds, so every answer carries the headers: the API's, the kit's own refusals (413,
415, 504), the JSON errors (404, 405, 422) and the 500 of an unhandled exception.

==============================  ===============================================
header                          why
==============================  ===============================================
``Content-Security-Policy``     the API serves JSON, which a browser should never
                                run or style: ``default-src 'none'`` says so, and
                                ``frame-ancestors 'none'`` forbids framing
``X-Frame-Options: DENY``       the same for browsers older than CSP level 2
``X-Content-Type-Options``      ``nosniff``: a JSON body is never guessed to be HTML
``Referrer-Policy``             ``no-referrer``: no URL (with ids) leaks onward
``Strict-Transport-Security``   only with ``hsts=True``, where TLS is terminated
                                in front of the service: over plain HTTP a browser
                                ignores it, and a lab on http://127.0.0.1 has none
==============================  ===============================================

The interactive docs (``/docs``, ``/redoc``) are HTML pages that load Swagger UI or
ReDoc from the jsDelivr CDN. They get a policy of their own that allows exactly
that CDN (and ReDoc's fonts), and the page's one inline script by its SHA-256 hash,
computed from the page as it is sent: no ``'unsafe-inline'`` for scripts. Styles
do need ``'unsafe-inline'``: both UIs set ``style`` attributes as they render.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CDN = "https://cdn.jsdelivr.net"
DOCS_PATHS = frozenset({"/docs", "/redoc"})
HSTS = "max-age=31536000; includeSubDomains"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)

# What a browser may call across origins, and which answer headers its script may read.
CORS_METHODS = ["GET", "POST"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSED_HEADERS = [
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Degraded",
    "X-Request-ID",
    "X-Trace-Id",
]


def docs_policy(page: bytes) -> str:
    """The CSP of a docs page: the CDN, ReDoc's fonts, and the page's inline scripts by hash."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'none'; script-src {CDN} {hashes}; "
        f"style-src {CDN} https://fonts.googleapis.com 'unsafe-inline'; "
        "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; "
        "connect-src 'self'; worker-src blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if hsts:
            self.common.append((b"strict-transport-security", HSTS.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in DOCS_PATHS:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self._with_headers(message, API_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the (small) docs page until it is whole, to hash its inline script."""
        start: Message | None = None
        body = bytearray()

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                await send(self._with_headers(start, docs_policy(bytes(body))))
                await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, hold)

    def _with_headers(self, start: Message, policy: str) -> Message:
        own = {name for name, _ in start.get("headers", [])}
        extra = [(b"content-security-policy", policy.encode()), *self.common]
        # A route that set one of these itself knows better; never send a header twice.
        headers = [*start.get("headers", []), *(h for h in extra if h[0] not in own)]
        return {**start, "headers": headers}


def install_security(app: FastAPI, *, cors_origins: Iterable[str], hsts: bool) -> None:
    """Add CORS (when origins are allowed) and, outermost, the security headers.

    Call it after every other middleware is added: Starlette runs the last one added
    first, so the headers are set on whatever answers underneath, refusals included.
    """
    origins = list(cors_origins)
    if origins:
        # Bearer tokens, not cookies: a browser sends no credentials across origins.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=False,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=hsts)
