"""OAuth2 at the gateway: the token endpoint, and the check of each bearer token.

``POST /api/auth/token`` (RFC 6749) takes a form and answers a short-lived signed JWT:

* ``grant_type=client_credentials``: a machine client (the labs, the load
  generator), its id and secret in HTTP Basic (preferred) or in the form;
* ``grant_type=password``: a demo user's ``username`` and ``password``.

An optional ``scope`` asks for fewer scopes than the caller may have. A token says
who (``sub``), what it may do (``scope``: ``orders:read`` to read an order,
``orders:write`` to place one), who signed it and for whom (``iss``, ``aud``), when
(``iat``, ``exp``) and which token it is (``jti``). The public catalog needs none.

Checking a token pins everything an attacker could choose: the algorithm list is
fixed (HS256 only, so ``alg: none`` and an RS256/HS256 confusion are refused),
and issuer, audience, expiry and every claim above are required. Every secret is
compared in constant time, and an unknown user costs the same comparison as a
known one, so timing tells nothing about who exists.

Errors keep the project's JSON body, with the codes of RFC 6749 and RFC 6750:

=====  ======================  ====================================================
401    ``unauthorized``        no bearer token (``WWW-Authenticate: Bearer``)
401    ``invalid_token``       expired, badly signed, wrong audience or issuer …
403    ``insufficient_scope``  a good token without the route's scope
400    ``invalid_request``,    the token endpoint: a missing field, an unknown
       ``invalid_grant``,      grant type, a wrong password, a scope the client
       ``invalid_scope``,      may not have
       ``unsupported_grant_type``
401    ``invalid_client``      the token endpoint: an unknown client or wrong secret
=====  ======================  ====================================================
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

import jwt
import structlog
from fastapi import APIRouter, Depends, Form, Request, Response, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from pydantic import BaseModel, SecretStr

from gateway.settings import Settings
from obskit import ErrorBody, ServiceError

log = structlog.get_logger("gateway.auth")

#: The only algorithm a token may use: never read from the token itself.
ALGORITHMS = ["HS256"]
TOKEN_URL = "/api/auth/token"
SCOPES = {"orders:read": "Read an order.", "orders:write": "Place an order."}
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "scope"]
REALM = 'realm="obslab"'

# Documents both flows in the OpenAPI schema (and gives /docs an Authorize button);
# auto_error=False so that a missing token gets our JSON 401, not FastAPI's.
oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes=SCOPES),
        password=OAuthFlowPassword(tokenUrl=TOKEN_URL, scopes=SCOPES),
    ),
    auto_error=False,
)


class AuthError(ServiceError):
    """A refused credential: 401 with ``WWW-Authenticate``, or 403 for a missing scope."""

    def __init__(self, status: int, code: str, message: str, challenge: str) -> None:
        super().__init__(message, code=code, headers={"www-authenticate": challenge})
        self.status_code = status


class TokenError(ServiceError):
    """A refused token request (RFC 6749 section 5.2)."""

    status_code = 400


class Principal(BaseModel):
    """Who a verified token speaks for, and what it may do."""

    subject: str
    scopes: frozenset[str]
    token_id: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


def issue_token(settings: Settings, subject: str, scopes: frozenset[str]) -> TokenResponse:
    now = int(time.time())
    scope = " ".join(sorted(scopes))
    claims = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject,
        "iat": now,
        "exp": now + settings.auth_token_ttl_s,
        "jti": uuid.uuid4().hex,
        "scope": scope,
    }
    token = jwt.encode(claims, settings.auth_signing_key.get_secret_value(), ALGORITHMS[0])
    return TokenResponse(access_token=token, expires_in=settings.auth_token_ttl_s, scope=scope)


def verify_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; :class:`jwt.InvalidTokenError` for any other."""
    claims = jwt.decode(
        token,
        settings.auth_signing_key.get_secret_value(),
        algorithms=ALGORITHMS,
        audience=settings.auth_audience,
        issuer=settings.auth_issuer,
        leeway=settings.auth_leeway_s,
        options={"require": REQUIRED_CLAIMS},
    )
    scope, subject, token_id = claims["scope"], claims["sub"], claims["jti"]
    if not all(isinstance(value, str) for value in (scope, subject, token_id)):
        raise jwt.InvalidTokenError("scope, sub and jti must be strings")
    return Principal(subject=subject, scopes=frozenset(scope.split()), token_id=token_id)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def authenticate(
    security: SecurityScopes,
    settings: SettingsDep,
    authorization: Annotated[str | None, Depends(oauth2)],
) -> Principal:
    """The caller's principal, if its bearer token is valid and holds the route's scopes."""
    token = bearer_token(authorization)
    if token is None:
        raise AuthError(401, "unauthorized", "Send a bearer token.", f"Bearer {REALM}")
    try:
        principal = verify_token(settings, token)
    except jwt.InvalidTokenError as exc:
        # The reason is for the logs (never the token); the caller learns only that
        # this token will not do, not which check it failed.
        log.info("auth.token_refused", reason=type(exc).__name__)
        raise AuthError(
            401,
            "invalid_token",
            "The bearer token is not valid: expired, badly signed or not for this API.",
            f'Bearer {REALM}, error="invalid_token"',
        ) from None
    missing = sorted(set(security.scopes) - principal.scopes)
    if missing:
        raise AuthError(
            403,
            "insufficient_scope",
            f"The token lacks the scope {' '.join(missing)}.",
            f'Bearer {REALM}, error="insufficient_scope", scope="{" ".join(security.scopes)}"',
        )
    structlog.contextvars.bind_contextvars(enduser_id=principal.subject)
    return principal


def requires(scope: str) -> Any:
    """A dependency that lets through only a token with ``scope``."""
    return Security(authenticate, scopes=[scope])


_ERROR: dict[str, object] = {"model": ErrorBody}
#: What a protected route may answer besides its own (for its OpenAPI responses).
AUTH_RESPONSES: dict[int | str, dict[str, object]] = {401: _ERROR, 403: _ERROR}

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _same(given: str, expected: SecretStr | None) -> bool:
    """Constant-time comparison, also when there is nothing to compare with."""
    secret = expected.get_secret_value() if expected is not None else uuid.uuid4().hex
    return hmac.compare_digest(given.encode(), secret.encode()) and expected is not None


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header, if it has them."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # RFC 6749 section 2.3.1: both are form-encoded before they are joined.
    return (unquote_plus(client_id), unquote_plus(secret)) if sep else None


def _granted(requested: str | None) -> frozenset[str]:
    """The scopes asked for (all of them when none are named); an unknown one is refused."""
    if requested is None or not requested.strip():
        return frozenset(SCOPES)
    scopes = frozenset(requested.split())
    unknown = scopes - SCOPES.keys()
    if unknown:
        raise TokenError(f"Unknown scope: {' '.join(sorted(unknown))}.", code="invalid_scope")
    return scopes


# Form fields are capped: a token request is small, and a secret is never 10 kB.
FormField = Annotated[str | None, Form(max_length=200)]


@router.post(
    "/token",
    response_model=TokenResponse,
    responses={400: _ERROR, 401: _ERROR, 413: _ERROR, 415: _ERROR},
)
async def create_token(
    request: Request,
    response: Response,
    settings: SettingsDep,
    grant_type: FormField = None,
    scope: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
    username: FormField = None,
    password: FormField = None,
) -> TokenResponse:
    """Exchange client credentials or a demo user's password for a bearer token."""
    # A token answer must never be cached (RFC 6749 section 5.1).
    response.headers["cache-control"] = "no-store"
    if grant_type == "client_credentials":
        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or client_secret is None:
            raise TokenError(
                "Send client_id and client_secret (HTTP Basic or form).", code="invalid_request"
            )
        if not _same(client_secret, settings.auth_clients.get(client_id)):
            log.info("auth.client_refused")
            raise AuthError(
                401, "invalid_client", "Unknown client or wrong secret.", f"Basic {REALM}"
            )
        subject = f"client:{client_id}"
    elif grant_type == "password":
        if not username or password is None:
            raise TokenError("Send username and password.", code="invalid_request")
        if not _same(password, settings.auth_users.get(username)):
            log.info("auth.user_refused")
            raise TokenError("Wrong username or password.", code="invalid_grant")
        subject = f"user:{username}"
    elif grant_type is None:
        raise TokenError("Send a grant_type.", code="invalid_request")
    else:
        raise TokenError(
            "grant_type must be client_credentials or password.", code="unsupported_grant_type"
        )
    answer = issue_token(settings, subject, _granted(scope))
    log.info("auth.token_issued", enduser_id=subject, scope=answer.scope)
    return answer
