"""Random single-op runtime packages for the one-step tests: every op the runtime supports.

Each package is a real `aicommons.runtime` package (manifest, roots, validation), so the
on-chain step is always compared with the runtime's kernels and its pure-int reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aicommons.runtime import Layer, ModelPackage

OPS = ("dense", "conv2d", "maxpool", "avgpool", "add", "clamp", "reshape")
FAN_IN_CAP = 2**31 - 1


def _requant_tensors(
    rng: np.random.Generator, name: str, channels: int, fan_in: int, weight_shape: tuple[int, ...]
) -> dict[str, np.ndarray]:
    bias_bound = min(2**24, FAN_IN_CAP - fan_in * 16256)
    return {
        f"{name}.weight": rng.integers(-127, 128, weight_shape).astype(np.int8),
        f"{name}.bias": rng.integers(-bias_bound, bias_bound + 1, channels).astype(np.int32),
        f"{name}.multiplier": rng.integers(1, 2**31, channels).astype(np.int32),
        f"{name}.shift": rng.integers(0, 63, channels).astype(np.int32),
    }


def _roles(name: str) -> dict[str, str]:
    return {role: f"{name}.{role}" for role in ("weight", "bias", "multiplier", "shift")}


def _out_range(rng: np.random.Generator, wide: bool) -> tuple[str, int, int]:
    if wide:
        return "int32", -(2**31), 2**31 - 1
    lo = int(rng.choice([-128, 0, -5]))
    return "int8", lo, int(rng.integers(max(lo, 0), 128))


def _window(rng: np.random.Generator, height: int, width: int, *, pool: bool) -> dict[str, Any]:
    kernel = [int(rng.integers(1, min(height, 4) + 1)), int(rng.integers(1, min(width, 4) + 1))]
    dilations = [1, 1] if pool else [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
    strides = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
    limits = [(kernel[i % 2] - 1) * dilations[i % 2] for i in range(4)]
    pads = [int(rng.integers(0, limit + 1)) for limit in limits]
    for axis, size in ((0, height), (1, width)):
        # The window (dilated) must fit the padded input at least once.
        while size + pads[axis] + pads[axis + 2] < dilations[axis] * (kernel[axis] - 1) + 1:
            dilations[axis] = 1
            kernel[axis] = max(1, kernel[axis] - 1)
    return {"kernel": kernel, "strides": strides, "pads": pads, "dilations": dilations}


def _out_hw(height: int, width: int, attrs: dict[str, Any]) -> tuple[int, int]:
    k, s, p, d = attrs["kernel"], attrs["strides"], attrs["pads"], attrs["dilations"]
    out_h = (height + p[0] + p[2] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    out_w = (width + p[1] + p[3] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    return out_h, out_w


def random_layer_package(
    rng: np.random.Generator, op: str, *, fan_in: int | None = None
) -> tuple[ModelPackage, np.ndarray]:
    """A package whose last layer is `op` (add: fed by the input and its clamp), and an input."""
    tensors: dict[str, np.ndarray] = {}
    layers: list[Layer] = []
    wide = bool(rng.integers(0, 2))
    if op == "dense":
        k = fan_in or int(rng.integers(1, 70))
        channels = int(rng.integers(1, 12))
        dtype, lo, hi = _out_range(rng, wide)
        tensors |= _requant_tensors(rng, "d", channels, k, (channels, k))
        layers.append(
            Layer(
                "d",
                "dense",
                ("input",),
                "y",
                (channels,),
                dtype,
                "1",
                _roles("d"),
                {"channels": channels, "lo": lo, "hi": hi},
            )
        )
        shape: tuple[int, ...] = (k,)
    else:
        cin, height, width = (
            int(rng.integers(1, 5)),
            int(rng.integers(1, 8)),
            int(rng.integers(1, 8)),
        )
        shape = (cin, height, width)
        if op == "conv2d":
            groups = int(rng.choice([g for g in (1, 2, 3) if cin % g == 0]))
            channels = groups * int(rng.integers(1, 4))
            attrs = _window(rng, height, width, pool=False)
            out_h, out_w = _out_hw(height, width, attrs)
            dtype, lo, hi = _out_range(rng, wide)
            kh, kw = attrs["kernel"]
            tensors |= _requant_tensors(
                rng, "c", channels, cin // groups * kh * kw, (channels, cin // groups, kh, kw)
            )
            attrs |= {"channels": channels, "groups": groups, "lo": lo, "hi": hi}
            layers.append(
                Layer(
                    "c",
                    "conv2d",
                    ("input",),
                    "y",
                    (channels, out_h, out_w),
                    dtype,
                    "1",
                    _roles("c"),
                    attrs,
                )
            )
        elif op in ("maxpool", "avgpool"):
            attrs = _window(rng, height, width, pool=True)
            out_h, out_w = _out_hw(height, width, attrs)
            if op == "avgpool":
                attrs["count_include_pad"] = int(rng.integers(0, 2))
            layers.append(Layer("p", op, ("input",), "y", (cin, out_h, out_w), attrs=attrs))
        elif op == "add":
            lo = int(rng.choice([-128, 0]))
            layers.append(Layer("a0", "clamp", ("input",), "r", shape, attrs={"lo": lo, "hi": 90}))
            dtype, lo, hi = _out_range(rng, wide)
            tensors["a.multiplier"] = rng.integers(0, 2**31, 2).astype(np.int32)
            tensors["a.shift"] = rng.integers(0, 63, 1).astype(np.int32)
            layers.append(
                Layer(
                    "a",
                    "add",
                    ("input", "r"),
                    "y",
                    shape,
                    dtype,
                    "1",
                    {"multiplier": "a.multiplier", "shift": "a.shift"},
                    {"lo": lo, "hi": hi},
                )
            )
        elif op == "clamp":
            lo = int(rng.integers(-128, 50))
            layers.append(
                Layer(
                    "k",
                    "clamp",
                    ("input",),
                    "y",
                    shape,
                    attrs={"lo": lo, "hi": int(rng.integers(lo, 128))},
                )
            )
        elif op == "reshape":
            size = cin * height * width
            target = [size] if rng.integers(0, 2) else [height, cin * width]
            layers.append(
                Layer("s", "reshape", ("input",), "y", tuple(target), attrs={"shape": target})
            )
        else:
            raise ValueError(op)
    out_dtype = layers[-1].out_dtype
    package = ModelPackage.build(
        {"name": "input", "shape": list(shape), "scale": "1"},
        layers,
        [{"name": "y", "dtype": out_dtype, "scale": "1"}],
        tensors,
    )
    x = rng.integers(-128, 128, shape).astype(np.int8)
    return package, x
