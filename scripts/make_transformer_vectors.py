"""Regenerate docs/test-vectors/transformer-ops.json: the aicommons-int/2 ops on fixed inputs.

Run only when those ops' semantics change on purpose (a protocol change): the tests check the
committed file against `aicommons.runtime.reference`, and any other implementation (the Vyper
one-step verifiers) can check itself against the same file. Fixed integers, no RNG state beyond
a seeded generator whose outputs are written down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from aicommons.runtime import reference as ref

OUT = Path(__file__).resolve().parent.parent / "docs" / "test-vectors" / "transformer-ops.json"


def ints(rng: np.random.Generator, low: int, high: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(low, high + 1, shape)


def case(op: str, inputs: list[np.ndarray], tensors: dict, attrs: dict, output: np.ndarray) -> dict:
    """One sample (no batch axis) of one op: its inputs, tensors, attributes and output."""
    return {
        "op": op,
        "inputs": [x[0].tolist() for x in inputs],
        "tensors": {role: np.asarray(t).tolist() for role, t in tensors.items()},
        "attrs": attrs,
        "output": output[0].tolist(),
    }


def vectors() -> dict[str, Any]:
    rng = np.random.default_rng(20261202)
    cases = []
    ids = np.array([[101, 7, 2, 0, 0]])
    table = ints(rng, -32768, 32767, (120, 6))
    position = ints(rng, -32768, 32767, (8, 6))
    t = {"table": table, "position": position, "multiplier": [1 << 30, 3 << 28], "shift": [31]}
    cases.append(
        case(
            "embed",
            [ids],
            t,
            {"lo": -32768, "hi": 32767},
            ref.embed(ids, table, position, [1 << 30, 3 << 28], [31], -32768, 32767),
        )
    )
    cases.append(case("pad_mask", [ids], {}, {"pad_id": 0}, ref.pad_mask(ids, 0)))
    a, b = ints(rng, -32768, 32767, (1, 2, 3, 8)), ints(rng, -32768, 32767, (1, 2, 8, 3))
    cases.append(
        case(
            "matmul",
            [a, b],
            {"multiplier": [1 << 20], "shift": [35]},
            {"lo": -32768, "hi": 32767},
            ref.matmul(a, b, [1 << 20], [35], -32768, 32767),
        )
    )
    x = ints(rng, -32768, 32767, (1, 2, 3, 4))
    cases.append(case("transpose", [x], {}, {"perm": [2, 0, 1]}, ref.transpose(x, [2, 0, 1])))
    scores = ints(rng, -6000, 6000, (1, 2, 6))
    scores[0, 1, :] = [32767, -32768, 0, 5, 5, 32767]
    mask = np.array([[1, 1, 1, 1, 0, 1]])
    for in_frac in (0, 10, 30):
        cases.append(
            case(
                "softmax",
                [scores, mask],
                {},
                {"in_frac": in_frac},
                ref.softmax(scores, mask, in_frac),
            )
        )
    cases.append(
        case(
            "softmax",
            [scores, np.zeros((1, 6), int)],
            {},
            {"in_frac": 10},
            ref.softmax(scores, np.zeros((1, 6), int), 10),
        )
    )
    rows = ints(rng, -32768, 32767, (1, 2, 8))
    rows[0, 1] = 7
    m, s, bias = (
        ints(rng, -(2**31) + 1, 2**31 - 1, (8,)),
        ints(rng, 10, 40, (8,)),
        ints(rng, -99, 99, (8,)),
    )
    cases.append(
        case(
            "layernorm",
            [rows],
            {"multiplier": m, "shift": s, "bias": bias},
            {"lo": -32768, "hi": 32767},
            ref.layernorm(rows, m, s, bias, -32768, 32767),
        )
    )
    gelu = ints(rng, -32768, 32767, (65536,))
    x = np.array([[-32768, -1, 0, 1, 32767]])
    cases.append(
        {
            **case("lookup", [x], {}, {}, ref.lookup(x, gelu, 32768)),
            "tensors": {
                "table": {
                    "size": 65536,
                    "entries": {str(int(v) + 32768): int(gelu[int(v) + 32768]) for v in x[0]},
                }
            },
        }
    )
    seq = ints(rng, -32768, 32767, (1, 3, 5))
    keep = np.array([[1, 1, 0, 1, 0]])
    cases.append(case("mean_pool", [seq, keep], {}, {}, ref.mean_pool(seq, keep)))
    vec = ints(rng, -32768, 32767, (1, 6))
    cases.append(
        case(
            "l2norm",
            [vec],
            {},
            {"out_frac": 30, "lo": -(2**31), "hi": 2**31 - 1},
            ref.l2norm(vec, 30, -(2**31), 2**31 - 1),
        )
    )
    return {
        "semantics": "aicommons-int/2",
        "constants": {
            "LOG2E_Q30": ref.LOG2E_Q30,
            "EXP2_NEG_Q30": list(ref.EXP2_NEG_Q30),
            "SOFTMAX_OUT_BITS": ref.SOFTMAX_OUT_BITS,
            "LAYERNORM_FRAC": ref.LAYERNORM_FRAC,
        },
        "exp_neg_q30": [
            {"d": d, "in_frac": f, "value": ref.exp_neg_q30(d, f)}
            for d, f in ((0, 10), (1, 10), (709, 10), (1024, 10), (65535, 30), (31, 0), (22, 0))
        ],
        "isqrt": [{"value": v, "root": ref.isqrt(v)} for v in (0, 1, 3, 4, 2**62 - 1, 10**18)],
        "cases": cases,
    }  # fmt: skip


def main() -> None:
    OUT.write_text(json.dumps(vectors(), indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
