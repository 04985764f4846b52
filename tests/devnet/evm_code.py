"""Hand-assembled EVM bytecode for devnet tests: no compiler needed, and every opcode is
visible in the test that relies on it."""

from __future__ import annotations


def deploy_code(runtime: bytes) -> bytes:
    """Init code that returns `runtime` (PUSH1 n; DUP1; PUSH1 11; PUSH1 0; CODECOPY; PUSH1 0;
    RETURN), followed by the runtime itself."""
    assert len(runtime) < 256
    return bytes.fromhex(f"60{len(runtime):02x}80600b6000396000f3") + runtime
