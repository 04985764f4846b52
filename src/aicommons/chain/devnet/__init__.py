"""`aic devnet`: the embedded, persistent, Ethereum-JSON-RPC-compatible local chain (py-evm).

Import `DEV_ACCOUNTS` for the funded development keys (public; never for a real network),
`DevnetServer` to serve it in-process, `launch_devnet_process` to run it as a subprocess.
"""

from __future__ import annotations

from aicommons.chain.devnet.accounts import (
    DEV_ACCOUNTS,
    DEV_KEYS_WARNING,
    DEV_MNEMONIC,
    DevAccount,
)
from aicommons.chain.devnet.node import CHAIN_ID, DevnetChain, DevnetError
from aicommons.chain.devnet.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DevnetServer,
    DevnetStartError,
    default_data_dir,
    free_port,
    launch_devnet_process,
    rpc_answers,
    wait_for_rpc,
)
from aicommons.chain.devnet.store import DevnetDataError

__all__ = [
    "CHAIN_ID",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEV_ACCOUNTS",
    "DEV_KEYS_WARNING",
    "DEV_MNEMONIC",
    "DevAccount",
    "DevnetChain",
    "DevnetDataError",
    "DevnetError",
    "DevnetServer",
    "DevnetStartError",
    "default_data_dir",
    "free_port",
    "launch_devnet_process",
    "rpc_answers",
    "wait_for_rpc",
]
