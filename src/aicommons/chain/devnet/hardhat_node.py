"""Start a local hardhat node (the pinned npm package) as a reference EVM JSON-RPC node for
integration tests and benchmarks.

It binds 127.0.0.1, and must never download anything or prompt: CI mode, telemetry off,
and a config with nothing to compile.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from aicommons.chain.devnet.server import DEFAULT_HOST, free_port, wait_for_rpc_or_kill
from aicommons.chain.errors import HardhatNotInstalled

HARDHAT_CHAIN_ID = 31337
_CONFIG_DIR = Path(__file__).with_name("hardhat")


def find_hardhat_binary(start: Path | None = None) -> Path:
    """node_modules/.bin/hardhat in the nearest ancestor of `start` (default: this package)."""
    directory = (start or Path(__file__)).resolve()
    for candidate_root in (directory, *directory.parents):
        binary = candidate_root / "node_modules" / ".bin" / "hardhat"
        if binary.exists():
            return binary
    raise HardhatNotInstalled(
        "hardhat is not installed: run `npm ci` in the aicommons repository (make test does)"
    )


def launch_hardhat_node(
    port: int | None = None, host: str = DEFAULT_HOST, *, timeout_s: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `hardhat node` and wait until it answers; the caller terminates the process."""
    binary = find_hardhat_binary()
    chosen_port = port if port is not None else free_port(host)
    # One scratch dir for every node: with nothing to compile hardhat leaves only its empty
    # cache there, so sharing it keeps /tmp from filling with a directory per test run.
    scratch = Path(tempfile.gettempdir()) / "aicommons-hardhat-scratch"
    scratch.mkdir(exist_ok=True)
    environment = {
        **os.environ,
        "CI": "true",
        "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true",
        "DO_NOT_TRACK": "1",
        "AIC_HARDHAT_SCRATCH": str(scratch),
    }
    log_path = scratch / f"hardhat-node-{chosen_port}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 (owned by the child)
    process = subprocess.Popen(
        [str(binary), "node", "--hostname", host, "--port", str(chosen_port)],
        cwd=_CONFIG_DIR,
        env=environment,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    log_file.close()
    url = f"http://{host}:{chosen_port}"
    wait_for_rpc_or_kill(url, timeout_s, process)
    return process, url
