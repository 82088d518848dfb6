"""``obslab token``: a bearer token for the lab's demo client, from the gateway's token
endpoint through the edge, printed alone so a shell can use it::

    curl -H "Authorization: Bearer $(obslab token)" localhost:8000/api/orders/…

The demo client's id and secret are the gateway's dev defaults (the lab runs with
``OBSLAB_ENVIRONMENT=dev``); they are public, which is why a gateway in production
refuses to start with them.
"""

from __future__ import annotations

import json
from typing import Annotated

import httpx
import typer

from obslab.lab import LabSettings

#: The gateway's dev client (gateway.settings.DEV_CLIENT_ID / DEV_CLIENT_SECRET): the
#: CLI never imports a service, so the two public values are repeated here.
DEV_CLIENT_ID = "obslab-lab"
DEV_CLIENT_SECRET = "obslab-lab-dev-secret"


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
) -> None:
    """Print a bearer token for the lab's demo client (OAuth2 client credentials)."""
    base = url.rstrip("/") or f"http://127.0.0.1:{LabSettings().edge_port}"
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    try:
        response = httpx.post(
            f"{base}/api/auth/token", data=form, auth=(client_id, client_secret), timeout=10
        )
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach {base}: {exc} (is the lab up? obslab up)", err=True)
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        typer.echo(f"{base} refused: {response.status_code} {response.text}", err=True)
        raise typer.Exit(1)
    answer = response.json()
    typer.echo(json.dumps(answer, indent=2) if as_json else answer["access_token"])
