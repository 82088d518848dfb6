"""``obslab token``: a bearer token for the lab's demo client, from the gateway's token
endpoint through the edge, printed alone so a shell can use it::

    curl -H "Authorization: Bearer $(obslab token)" localhost:8000/api/orders/…

The demo client's id and secret are the gateway's dev defaults (the lab runs with
``OBSLAB_ENVIRONMENT=dev``); they are public, which is why a gateway in production
refuses to start with them.

``obslab token --service inventory`` prints instead a service token addressed to one
internal service (obskit._identity), signed with the services' shared key
(``OBSLAB_SERVICE_TOKEN_KEY``, else the lab's public dev key), for calling it directly::

    curl -X PUT -H "Authorization: Bearer $(obslab token --service inventory)" …
"""

from __future__ import annotations

import json
from typing import Annotated

import httpx
import typer

from obslab.native.lab import LabSettings
from obslab.shop import DEV_CLIENT_ID, DEV_CLIENT_SECRET, request_token
from obslab.topology import INTERNAL


def command(
    scope: Annotated[
        str, typer.Option(help="Ask for fewer scopes: orders:read, orders:write.")
    ] = "",
    url: Annotated[str, typer.Option(help="The shop's URL (default: the lab's edge).")] = "",
    client_id: Annotated[str, typer.Option(envvar="OBSLAB_LAB_CLIENT_ID")] = DEV_CLIENT_ID,
    client_secret: Annotated[
        str, typer.Option(envvar="OBSLAB_LAB_CLIENT_SECRET", show_default=False)
    ] = DEV_CLIENT_SECRET,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole token answer (expiry, scope).")
    ] = False,
    service: Annotated[
        str,
        typer.Option(
            help=f"A 60 s service token for calling one of {', '.join(INTERNAL)} directly."
        ),
    ] = "",
) -> None:
    """Print a bearer token for the lab's demo client (OAuth2 client credentials)."""
    if service:
        typer.echo(_service_token(service))
        return
    base = url.rstrip("/") or f"http://127.0.0.1:{LabSettings().edge_port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            response = request_token(http, scope, (client_id, client_secret))
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach {base}: {exc} (is the lab up? obslab up)", err=True)
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        typer.echo(f"{base} refused: {response.status_code} {response.text}", err=True)
        raise typer.Exit(1)
    answer = response.json()
    typer.echo(json.dumps(answer, indent=2) if as_json else answer["access_token"])


def _service_token(service: str) -> str:
    if service not in INTERNAL:
        raise typer.BadParameter(f"{service!r} is not one of {', '.join(INTERNAL)}.")
    # Imported here: only this option needs the services' library and its settings.
    import obskit

    # As the lab's services read it: dev mode, which accepts the public dev key.
    settings = obskit.ServiceSettings(service_name=service, environment="dev")
    key = settings.service_token_key.get_secret_value()
    return obskit.service_token(key, "obslab", service)
