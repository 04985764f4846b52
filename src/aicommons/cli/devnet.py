"""`aic devnet`: run the embedded, persistent local chain until Ctrl-C (or SIGTERM), and
`aic devnet advance`: move a development chain's clock and mine blocks.

Only parses options and prints; the chain lives in `aicommons.chain.devnet`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from aicommons.chain.devnet.node import DEFAULT_RPC_GAS_CAP
from aicommons.chain.devnet.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DevnetServer,
    default_data_dir,
    startup_banner,
)
from aicommons.cli._common import CliError, console

devnet_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Run a local, persistent EVM chain (chain id 1337) with funded development accounts.",
)


@devnet_app.callback()
def devnet_command(
    context: typer.Context,
    data: Path | None = typer.Option(
        None, "--data", help="Chain data directory (default: $AIC_HOME/devnet)."
    ),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="JSON-RPC port."),
    host: str = typer.Option(
        DEFAULT_HOST, "--host", help="Interface to bind; only change it on a trusted network."
    ),
    fsync: bool = typer.Option(
        False, "--fsync", help="fsync every block, so blocks survive power loss, not just crashes."
    ),
    rpc_gas_cap: int = typer.Option(
        DEFAULT_RPC_GAS_CAP,
        "--rpc-gas-cap",
        help="Most gas one eth_call or eth_estimateGas may use (never above the block limit).",
    ),
) -> None:
    """Run a local, persistent EVM chain (chain id 1337) with funded development accounts."""
    if context.invoked_subcommand is not None:
        return
    server = DevnetServer(
        data or default_data_dir(),
        host,
        port,
        fsync_every_block=fsync,
        rpc_gas_cap=rpc_gas_cap,
    )
    typer.echo(startup_banner(server))
    server.serve_forever()


@devnet_app.command("advance")
def advance_command(
    seconds: int = typer.Option(0, "--seconds", min=0, help="Move the clock this far ahead."),
    blocks: int = typer.Option(1, "--blocks", min=0, help="Then mine this many empty blocks."),
    rpc: str | None = typer.Option(
        None, "--rpc", help="JSON-RPC URL (default: the running local network)."
    ),
) -> None:
    """Move a development chain (this devnet, hardhat, anvil) forward in time and blocks."""
    from aicommons.chain.devnet.control import advance
    from aicommons.chain.errors import DevnetError
    from aicommons.sdk.network import resolve_endpoint

    endpoint = resolve_endpoint(rpc)
    try:
        head = advance(endpoint.rpc_url, seconds=seconds, blocks=blocks)
    except DevnetError as exc:
        raise CliError(f"{str(exc).strip().splitlines()[0]} ({endpoint.origin})") from None
    when = datetime.fromtimestamp(head.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    console.print(
        f"{endpoint.rpc_url}: block {head.block_number}, timestamp {head.timestamp} ({when})"
    )
