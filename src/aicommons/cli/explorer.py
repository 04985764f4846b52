"""`aic explorer`: index the chain and serve the explorer web app (127.0.0.1 by default).

Thin: resolves the endpoint and storage nodes as the other chain commands do, then calls
`aicommons.explorer.server.serve`.
"""

from __future__ import annotations

import typer

from aicommons.cli._common import console, run_cli
from aicommons.cli.network import NodeOption, RpcOption


def explorer_command(
    rpc: str | None = RpcOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: loopback)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to serve on."),
    node: list[str] | None = NodeOption,
) -> None:
    """Serve the explorer: models, versions, receipts (verified live), storage, market,
    governance, and a JSON API with OpenAPI docs at /docs."""
    from aicommons.cli.network import _client
    from aicommons.explorer.server import serve

    client = _client(rpc, None, node, signer=False)
    console.print(f"explorer: http://{host}:{port}  (indexing {client.rpc_url})", highlight=False)
    serve(client.rpc_url, host=host, port=port, storage_nodes=client.storage_nodes)


def run_standalone(command: object) -> None:
    """Run one command function as its own program (`python -m aicommons.explorer`)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    run_cli(app)
