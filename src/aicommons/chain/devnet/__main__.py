"""`python -m aicommons.chain.devnet`: run the devnet without the `aic` CLI (subprocess launches).

Bad input ends with a one-line error and status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aicommons.chain.devnet.node import DEFAULT_RPC_GAS_CAP
from aicommons.chain.devnet.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DevnetServer,
    default_data_dir,
    startup_banner,
)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the devnet, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m aicommons.chain.devnet")
    parser.add_argument("--data", type=Path, default=None, help="data dir ($AIC_HOME/devnet)")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--fsync", action="store_true", help="fsync every block (power loss)")
    parser.add_argument(
        "--rpc-gas-cap", type=int, default=DEFAULT_RPC_GAS_CAP, help="gas cap of eth_call"
    )
    arguments = parser.parse_args(argv)
    try:
        server = DevnetServer(
            arguments.data or default_data_dir(),
            arguments.host,
            arguments.port,
            fsync_every_block=arguments.fsync,
            rpc_gas_cap=arguments.rpc_gas_cap,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(startup_banner(server), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
