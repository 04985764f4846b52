"""A small transformer-shaped package for the one-step and dispute tests of the v2 ops.

ids -> pad_mask, embed -> layernorm -> one BERT block (Q, K, V dense; head reshape and
transposes; QK^T matmul; masked softmax; PV matmul; output dense; residual add; layernorm;
GELU lookup FFN; residual; layernorm) -> mean pool -> l2norm: every aicommons-int/2 op, with
random integer tensors inside the spec's bounds (an exactness and wiring fixture, not a model).
"""

from __future__ import annotations

import numpy as np

from aicommons.runtime import Layer, ModelPackage

FULL16 = {"lo": -32768, "hi": 32767}


def transformer_package(
    seed: int = 0,
    *,
    length: int = 8,
    width: int = 32,
    heads: int = 2,
    ffn: int = 64,
    vocab: int = 50,
) -> ModelPackage:
    """A one-block BERT of the given shapes with int16 activations and int32 token-id input."""
    rng = np.random.default_rng(seed)
    head = width // heads
    tensors: dict[str, np.ndarray] = {}
    layers: list[Layer] = []

    def tensor(name: str, value: np.ndarray) -> str:
        tensors[name] = value
        return name

    def ints(name: str, low: int, high: int, shape: tuple | int, dtype: type = np.int32) -> str:
        return tensor(name, rng.integers(low, high, shape).astype(dtype))

    def layer(name, op, inputs, out_shape, dtype="int16", roles=None, **attrs) -> str:  # noqa: ANN001, ANN003
        layers.append(
            Layer(name, op, tuple(inputs), name, tuple(out_shape), out_dtype=dtype,
                  tensors=roles or {}, attrs=attrs)
        )  # fmt: skip
        return name

    def dense(name: str, x: str, fan_in: int, channels: int) -> str:
        roles = {
            "weight": ints(f"{name}.w", -127, 128, (channels, fan_in), np.int8),
            "bias": ints(f"{name}.b", -5000, 5000, channels),
            "multiplier": ints(f"{name}.m", 1 << 20, 1 << 21, channels),
            "shift": tensor(f"{name}.s", np.full(channels, 30, np.int32)),
        }
        return layer(name, "dense", [x], (length, channels), roles=roles, channels=channels,
                     **FULL16)  # fmt: skip

    def layernorm(name: str, x: str) -> str:
        roles = {
            "multiplier": ints(f"{name}.m", -(1 << 15), 1 << 15, width),
            "shift": tensor(f"{name}.s", np.full(width, 17, np.int32)),
            "bias": ints(f"{name}.b", -500, 500, width),
        }
        return layer(name, "layernorm", [x], (length, width), roles=roles, **FULL16)

    def residual(name: str, a: str, b: str) -> str:
        roles = {
            "multiplier": tensor(f"{name}.m", np.array([1 << 29, 3 << 27], np.int32)),
            "shift": tensor(f"{name}.s", np.array([30], np.int32)),
        }
        return layer(name, "add", [a, b], (length, width), roles=roles, **FULL16)

    def scalar(name: str, multiplier: int, shift: int) -> dict[str, str]:
        return {
            "multiplier": tensor(f"{name}.m", np.array([multiplier], np.int32)),
            "shift": tensor(f"{name}.s", np.array([shift], np.int32)),
        }

    def split(name: str, x: str, perm: list[int], out: tuple[int, ...]) -> str:
        shape = (length, heads, head)
        return layer(name, "transpose", [layer(f"{name}r", "reshape", [x], shape,
                                               shape=list(shape))], out, perm=perm)  # fmt: skip

    mask = layer("mask", "pad_mask", ["ids"], (length,), "int8", pad_id=0)
    emb = layer(
        "emb", "embed", ["ids"], (length, width),
        roles={
            "table": ints("emb.table", -20000, 20000, (vocab, width), np.int16),
            "position": ints("emb.pos", -3000, 3000, (length + 3, width), np.int16),
            "multiplier": tensor("emb.m", np.array([1 << 20, 1 << 20], np.int32)),
            "shift": tensor("emb.s", np.array([21], np.int32)),
        }, **FULL16,
    )  # fmt: skip
    h = layernorm("ln0", emb)
    q, k, v = (dense(name, h, width, width) for name in ("q", "k", "v"))
    qh = split("qh", q, [1, 0, 2], (heads, length, head))
    kt = split("kt", k, [1, 2, 0], (heads, head, length))
    vh = split("vh", v, [1, 0, 2], (heads, length, head))
    scores = layer("scores", "matmul", [qh, kt], (heads, length, length),
                   roles=scalar("scores", 1 << 20, 38), **FULL16)  # fmt: skip
    probs = layer("probs", "softmax", [scores, mask], (heads, length, length), in_frac=10)
    ctx = layer("ctx", "matmul", [probs, vh], (heads, length, head),
                roles=scalar("ctx", 1 << 20, 35), **FULL16)  # fmt: skip
    merged = layer("merged", "reshape",
                   [layer("ctxt", "transpose", [ctx], (length, heads, head), perm=[1, 0, 2])],
                   (length, width), shape=[length, width])  # fmt: skip
    h = layernorm("ln1", residual("res1", dense("o", merged, width, width), h))
    up = dense("up", h, width, ffn)
    grid = np.arange(-32768, 32768)
    gelu = grid * 0.5 * (1 + np.tanh(grid / 8192))
    act = layer("act", "lookup", [up], (length, ffn),
                roles={"table": tensor("gelu", gelu.round().astype(np.int16))})  # fmt: skip
    h = layernorm("ln2", residual("res2", dense("down", act, ffn, width), h))
    pooled = layer("pooled", "mean_pool", [h, mask], (width,))
    layer("out", "l2norm", [pooled], (width,), out_frac=14, **FULL16)
    return ModelPackage.build(
        {"name": "ids", "shape": [length], "scale": "1", "dtype": "int32"},
        layers,
        [{"name": "out", "dtype": "int16", "scale": "1"}],
        tensors,
    )


def token_ids(rng: np.random.Generator, *, length: int = 8, vocab: int = 50) -> np.ndarray:
    """One padded sentence: random ids in [1, vocab), then pad id 0 after a random length."""
    ids = rng.integers(1, vocab, length)
    ids[int(rng.integers(1, length + 1)) :] = 0
    return ids.astype(np.int32)
