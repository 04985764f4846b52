"""`aic devnet`: run the embedded, persistent local chain until Ctrl-C (or SIGTERM).

Only parses options and prints; the chain lives in `aicommons.chain.devnet`.
"""

from __future__ import annotations

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


def devnet_command(
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
    server = DevnetServer(
        data or default_data_dir(),
        host,
        port,
        fsync_every_block=fsync,
        rpc_gas_cap=rpc_gas_cap,
    )
    typer.echo(startup_banner(server))
    server.serve_forever()
