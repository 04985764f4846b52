"""Import a BERT sentence-embedding checkpoint (all-MiniLM-L6-v2 and kin) as an integer package.

`quantize_checkpoint` builds the graph of docs/integer-semantics.md ("A BERT layer in these
ops") from the version-2 ops, takes every activation scale from the float model
(`bert.float_forward`) run on calibration texts, quantises every linear layer's weights to int8
per output channel, and commits the tokenizer in the package (a tensor the version id covers).
The float model never reaches a committed result; nothing here runs at inference time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aicommons.commit import keccak256
from aicommons.runtime import reference as ref
from aicommons.runtime.bert import Checkpoint, float_forward, gelu, load_checkpoint
from aicommons.runtime.errors import CalibrationError, CheckpointError
from aicommons.runtime.layer import Layer
from aicommons.runtime.package import ModelPackage, scale_text
from aicommons.runtime.quantize import (
    add_multipliers,
    layer_multiplier,
    quantize_multiplier,
    weight_scales,
)
from aicommons.runtime.text import TOKENIZER_FORMAT, TextTokenizer, check_texts

ACTIVATION = "int16"
ACT_MAX = ref.INT16_MAX
FULL = {"lo": ref.INT16_MIN, "hi": ref.INT16_MAX}
HEADROOM = 2.0
"""Activation scales give the calibrated peak this factor of room (int16 keeps 14 bits below
it): a text outside the calibration set may reach further, and a clamped residual is costly."""
DEFAULT_MAX_LENGTH = 128
"""Tokens a sample, unless the checkpoint's tokenizer.json or sentence_bert_config.json says
less: the dispute game checks int16 attention rows of up to 128 keys."""
OUT_FRAC = 30
"""The embedding is int32 in units of 2^-30 (l2norm's output)."""
TOKENIZER_TENSOR = "tokenizer.json"
TOKENIZER_ROW = 1024
"""tokenizer.json is committed as int8 rows of this many bytes (the last zero-padded)."""
CALIBRATION_BATCH = 16


# -- tokenizer in the package -------------------------------------------------------------------


def tokenizer_tensor(data: bytes) -> np.ndarray:
    """tokenizer.json bytes as int8 [rows, TOKENIZER_ROW], zero-padded at the end."""
    rows = -(-len(data) // TOKENIZER_ROW)
    padded = data + bytes(rows * TOKENIZER_ROW - len(data))
    return np.frombuffer(padded, dtype=np.int8).reshape(rows, TOKENIZER_ROW).copy()


def default_max_length(checkpoint: Checkpoint, tokenizer: TextTokenizer) -> int:
    """min(DEFAULT_MAX_LENGTH, sentence-transformers' max_seq_length, tokenizer.json's own
    truncation length when it sets one)."""
    length = min(DEFAULT_MAX_LENGTH, checkpoint.max_seq_length)
    if tokenizer.configured_max_length:
        length = min(length, tokenizer.configured_max_length)
    return length


# -- calibration --------------------------------------------------------------------------------


def calibration_peaks(
    checkpoint: Checkpoint, tokenizer: TextTokenizer, texts: Sequence[str]
) -> dict[str, float]:
    """max |value| of every named float intermediate over the real (unpadded) tokens."""
    peaks: dict[str, float] = {}
    for start in range(0, len(texts), CALIBRATION_BATCH):
        encoded = tokenizer.encode(texts[start : start + CALIBRATION_BATCH])
        valid = encoded.mask.astype(bool)

        def capture(name: str, value: np.ndarray, valid: np.ndarray = valid) -> None:
            if value.ndim == 3:  # [N, L, D]: real tokens only
                value = value[valid]
            elif value.ndim == 4:  # [N, H, L, L]: real query rows (masked keys are 0)
                value = value.transpose(0, 2, 1, 3)[valid]
            peak = float(np.abs(value).max()) if value.size else 0.0
            peaks[name] = max(peaks.get(name, 0.0), peak)

        float_forward(checkpoint, encoded.ids, encoded.mask, capture=capture)
    return peaks


# -- the graph ----------------------------------------------------------------------------------


class _Builder:
    """Collects layers and tensors; each value's float scale is kept beside it."""

    def __init__(self, checkpoint: Checkpoint, length: int, peaks: dict[str, float]) -> None:
        self.checkpoint = checkpoint
        self.length = length
        self.peaks = peaks
        self.layers: list[Layer] = []
        self.tensors: dict[str, np.ndarray] = {}
        self.scales: dict[str, float] = {"ids": 1.0}

    def calibrated_scale(self, name: str) -> float:
        peak = self.peaks.get(name, 0.0)
        if not peak > 0:
            raise CalibrationError(f"calibration never reached value {name!r}")
        return HEADROOM * peak / ACT_MAX

    def tensor(self, name: str, value: np.ndarray) -> str:
        self.tensors[name] = value
        return name

    def scalar_requant(self, name: str, multipliers: Sequence[int], shift: int) -> dict[str, str]:
        return {
            "multiplier": self.tensor(f"{name}.multiplier", np.array(multipliers, np.int32)),
            "shift": self.tensor(f"{name}.shift", np.array([shift], np.int32)),
        }

    def layer(
        self,
        name: str,
        op: str,
        inputs: Sequence[str],
        out_shape: Sequence[int],
        scale: float,
        dtype: str = ACTIVATION,
        tensors: dict[str, str] | None = None,
        **attrs: Any,
    ) -> str:
        self.layers.append(
            Layer(
                name=name,
                op=op,
                inputs=tuple(inputs),
                output=name,
                out_shape=tuple(out_shape),
                out_dtype=dtype,
                out_scale=scale_text(scale),
                tensors=tensors or {},
                attrs=attrs,
            )
        )
        self.scales[name] = scale
        return name

    # -- ops with quantised parameters --------------------------------------------------------

    def embed(self, name: str) -> str:
        weights = self.checkpoint.weights
        word = weights["embeddings.word_embeddings.weight"].astype(np.float64)
        # Token type is always 0 for one text: its row folds into the positions.
        position = (
            weights["embeddings.position_embeddings.weight"][: self.length].astype(np.float64)
            + weights["embeddings.token_type_embeddings.weight"][0]
        )
        word_scale = float(np.abs(word).max()) / ACT_MAX
        position_scale = float(np.abs(position).max()) / ACT_MAX
        out_scale = self.calibrated_scale(name)
        ratios = (word_scale / out_scale, position_scale / out_scale)
        # One shift for both: the larger multiplier below 2^30 keeps |sum| < 2^47.
        _, shift = quantize_multiplier(max(ratios), (1 << 30) - 1)
        multipliers = [round(r * 2**shift) for r in ratios]
        tensors = {
            "table": self.tensor(f"{name}.table", np.rint(word / word_scale).astype(np.int16)),
            "position": self.tensor(
                f"{name}.position", np.rint(position / position_scale).astype(np.int16)
            ),
            **self.scalar_requant(name, multipliers, shift),
        }
        width = word.shape[1]
        return self.layer(
            name, "embed", ["ids"], (self.length, width), out_scale, tensors=tensors, **FULL
        )

    def layernorm(self, name: str, x: str, weight: np.ndarray, bias: np.ndarray) -> str:
        out_scale = self.calibrated_scale(name)
        multipliers, shifts = [], []
        for gamma in weight.astype(np.float64):
            if gamma == 0:
                multipliers.append(0)
                shifts.append(0)
                continue
            m, s = quantize_multiplier(abs(gamma) * 2.0**-ref.LAYERNORM_FRAC / out_scale)
            multipliers.append(int(math.copysign(m, gamma)))
            shifts.append(s)
        bias_q = np.clip(np.rint(bias.astype(np.float64) / out_scale), ref.INT32_MIN, ref.INT32_MAX)
        tensors = {
            "multiplier": self.tensor(f"{name}.multiplier", np.array(multipliers, np.int32)),
            "shift": self.tensor(f"{name}.shift", np.array(shifts, np.int32)),
            "bias": self.tensor(f"{name}.bias", bias_q.astype(np.int32)),
        }
        shape = self.layers_shape(x)
        return self.layer(name, "layernorm", [x], shape, out_scale, tensors=tensors, **FULL)

    def dense(self, name: str, x: str, weight: np.ndarray, bias: np.ndarray) -> str:
        in_scale = self.scales[x]
        out_scale = self.calibrated_scale(name)
        weight = weight.astype(np.float64)
        channels, fan_in = weight.shape
        scales = weight_scales(weight)
        weight_q = np.clip(np.rint(weight / scales[:, None]), ref.WEIGHT_MIN, ref.WEIGHT_MAX)
        bias_q = np.rint(bias.astype(np.float64) / (in_scale * scales))
        terms = fan_in * ref.INPUT_BOUND[ACTIVATION] * ref.WEIGHT_MAX
        pairs = [
            layer_multiplier(in_scale * s / out_scale, int(abs(b)) + terms)
            for s, b in zip(scales, bias_q, strict=True)
        ]
        tensors = {
            "weight": self.tensor(f"{name}.weight", weight_q.astype(np.int8)),
            "bias": self.tensor(f"{name}.bias", bias_q.astype(np.int32)),
            "multiplier": self.tensor(
                f"{name}.multiplier", np.array([m for m, _ in pairs], np.int32)
            ),
            "shift": self.tensor(f"{name}.shift", np.array([s for _, s in pairs], np.int32)),
        }
        shape = (*self.layers_shape(x)[:-1], channels)
        return self.layer(
            name, "dense", [x], shape, out_scale, tensors=tensors, channels=channels, **FULL
        )

    def add(self, name: str, a: str, b: str) -> str:
        out_scale = self.calibrated_scale(name)
        multipliers, shift = add_multipliers(
            [self.scales[a] / out_scale, self.scales[b] / out_scale]
        )
        return self.layer(
            name,
            "add",
            [a, b],
            self.layers_shape(a),
            out_scale,
            tensors=self.scalar_requant(name, multipliers, shift),
            **FULL,
        )

    def matmul(self, name: str, a: str, b: str, real: float, out_scale: float, fan_in: int) -> str:
        """a @ b with M * 2^-S ~ `real` (the product of the operands' scales, any fold-ins, over
        the output scale)."""
        worst = fan_in * ref.INPUT_BOUND[ACTIVATION] ** 2
        multiplier, shift = layer_multiplier(real, worst)
        a_shape, b_shape = self.layers_shape(a), self.layers_shape(b)
        shape = (*a_shape[:-1], b_shape[-1])
        return self.layer(
            name,
            "matmul",
            [a, b],
            shape,
            out_scale,
            tensors=self.scalar_requant(name, [multiplier], shift),
            **FULL,
        )

    def gelu(self, name: str, x: str) -> str:
        """GELU by a 65536-entry table at an output scale that holds GELU of the whole input
        range (no clamping)."""
        steps = np.arange(ref.INT16_MIN, ref.INT16_MAX + 1, dtype=np.float64)
        values = gelu(steps * self.scales[x])
        out_scale = float(np.abs(values).max()) / ACT_MAX
        table = np.clip(np.rint(values / out_scale), ref.INT16_MIN, ref.INT16_MAX)
        tensors = {"table": self.tensor(f"{name}.table", table.astype(np.int16))}
        return self.layer(name, "lookup", [x], self.layers_shape(x), out_scale, tensors=tensors)

    def layers_shape(self, name: str) -> tuple[int, ...]:
        if name == "ids":
            return (self.length,)
        return next(layer.out_shape for layer in self.layers if layer.output == name)


def build_graph(builder: _Builder) -> str:
    """The whole encoder; returns the output value's name."""
    ck, length = builder.checkpoint, builder.length
    cfg = ck.config
    heads, size, width = cfg.num_heads, cfg.head_size, cfg.hidden_size
    w = ck.weights
    mask = builder.layer(
        "mask", "pad_mask", ["ids"], (length,), 1.0, "int8", pad_id=cfg.pad_token_id
    )
    h = builder.embed("embed")
    h = builder.layernorm(
        "embed.norm", h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]
    )
    split = (length, heads, size)
    for i in range(cfg.num_layers):
        p = f"l{i}."

        def linear(name: str, x: str, module: str, layer: int = i) -> str:
            return builder.dense(
                name, x, ck.layer(layer, module + ".weight"), ck.layer(layer, module + ".bias")
            )

        q = linear(p + "q", h, "attention.self.query")
        k = linear(p + "k", h, "attention.self.key")
        v = linear(p + "v", h, "attention.self.value")
        sq, sk, sv = builder.scales[q], builder.scales[k], builder.scales[v]
        qh = builder.layer(
            p + "q.t",
            "transpose",
            [builder.layer(p + "q.split", "reshape", [q], split, sq, shape=list(split))],
            (heads, length, size),
            sq,
            perm=[1, 0, 2],
        )
        kt = builder.layer(
            p + "k.t",
            "transpose",
            [builder.layer(p + "k.split", "reshape", [k], split, sk, shape=list(split))],
            (heads, size, length),
            sk,
            perm=[1, 2, 0],
        )
        vh = builder.layer(
            p + "v.t",
            "transpose",
            [builder.layer(p + "v.split", "reshape", [v], split, sv, shape=list(split))],
            (heads, length, size),
            sv,
            perm=[1, 0, 2],
        )
        # Scores at scale 2^-in_frac: the largest power of two that holds the headroom.
        peak = builder.peaks.get(p + "scores", 0.0)
        if not peak > 0:
            raise CalibrationError(f"calibration never reached value {p + 'scores'!r}")
        in_frac = int(min(30, max(0, math.floor(math.log2(ACT_MAX / (HEADROOM * peak))))))
        scores = builder.matmul(
            p + "scores", qh, kt, sq * sk / math.sqrt(size) * 2.0**in_frac, 2.0**-in_frac, size
        )
        probs = builder.layer(
            p + "probs",
            "softmax",
            [scores, mask],
            (heads, length, length),
            2.0**-ref.SOFTMAX_OUT_BITS,
            in_frac=in_frac,
        )
        context_scale = builder.calibrated_scale(p + "context")
        context = builder.matmul(
            p + "context.h",
            probs,
            vh,
            2.0**-ref.SOFTMAX_OUT_BITS * sv / context_scale,
            context_scale,
            length,
        )
        merged = builder.layer(
            p + "context",
            "reshape",
            [
                builder.layer(
                    p + "context.t", "transpose", [context], split, context_scale, perm=[1, 0, 2]
                )
            ],
            (length, width),
            context_scale,
            shape=[length, width],
        )
        attn = linear(p + "attn_out", merged, "attention.output.dense")
        h = builder.layernorm(
            p + "attn_norm",
            builder.add(p + "attn_res", attn, h),
            ck.layer(i, "attention.output.LayerNorm.weight"),
            ck.layer(i, "attention.output.LayerNorm.bias"),
        )
        up = linear(p + "ffn_in", h, "intermediate.dense")
        down = linear(p + "ffn_out", builder.gelu(p + "gelu", up), "output.dense")
        h = builder.layernorm(
            p + "ffn_norm",
            builder.add(p + "ffn_res", down, h),
            ck.layer(i, "output.LayerNorm.weight"),
            ck.layer(i, "output.LayerNorm.bias"),
        )
    # mean_pool pools rows: features by tokens, so a one-step reads one row of 128 values.
    tokens_last = builder.layer(
        "pool.t", "transpose", [h], (width, length), builder.scales[h], perm=[1, 0]
    )
    pooled = builder.layer("pool", "mean_pool", [tokens_last, mask], (width,), builder.scales[h])
    if not ck.normalize:
        return pooled
    return builder.layer(
        "embedding",
        "l2norm",
        [pooled],
        (width,),
        2.0**-OUT_FRAC,
        "int32",
        out_frac=OUT_FRAC,
        lo=ref.INT32_MIN,
        hi=ref.INT32_MAX,
    )


def quantize_checkpoint(
    directory: str | Path,
    calibration_texts: Sequence[str],
    *,
    max_length: int | None = None,
) -> ModelPackage:
    """A BERT sentence-embedding checkpoint directory as a verified integer package.

    `calibration_texts` (a few dozen typical texts) set every activation scale; `max_length`
    (tokens a sample, specials included) defaults to `default_max_length`. The package's input
    is the token ids int32 [max_length] (padding = the config's pad id), its output the
    L2-normalised embedding int32 [hidden] in units of 2^-30; tokenizer.json is committed as the
    tensor `tokenizer.json` and described in `metadata.text`.
    """
    checkpoint = load_checkpoint(directory)
    cfg = checkpoint.config
    try:
        texts = check_texts(calibration_texts)
    except ValueError as exc:
        raise CalibrationError(f"calibration texts: {exc}") from None
    probe = TextTokenizer(checkpoint.tokenizer_json, checkpoint.max_seq_length, cfg.pad_token_id)
    if probe.vocab_size > cfg.vocab_size:
        raise CheckpointError(
            f"tokenizer.json has {probe.vocab_size} tokens but config.json vocab_size is "
            f"{cfg.vocab_size} (mismatched files?)"
        )
    if probe.configured_pad_id is not None and probe.configured_pad_id != cfg.pad_token_id:
        raise CheckpointError(
            f"tokenizer.json pads with id {probe.configured_pad_id} but config.json "
            f"pad_token_id is {cfg.pad_token_id} (mismatched files?)"
        )
    length = max_length or default_max_length(checkpoint, probe)
    longest = min(cfg.max_position_embeddings, checkpoint.max_seq_length)
    if not 3 <= length <= longest:
        raise CheckpointError(f"max length {length} outside [3, {longest}]")
    tokenizer = TextTokenizer(checkpoint.tokenizer_json, length, cfg.pad_token_id)
    peaks = calibration_peaks(checkpoint, tokenizer, texts)
    builder = _Builder(checkpoint, length, peaks)
    output = build_graph(builder)
    builder.tensor(TOKENIZER_TENSOR, tokenizer_tensor(checkpoint.tokenizer_json))
    safetensors_bytes = (checkpoint.path / "model.safetensors").read_bytes()
    metadata = {
        "source": "sentence-transformers checkpoint",
        "source_safetensors_keccak256": "0x" + keccak256(safetensors_bytes).hex(),
        "architecture": {
            "layers": cfg.num_layers,
            "hidden": cfg.hidden_size,
            "heads": cfg.num_heads,
            "intermediate": cfg.intermediate_size,
            "vocab": cfg.vocab_size,
        },
        "calibration_samples": len(texts),
        "text": {
            "tokenizer": {
                "format": TOKENIZER_FORMAT,
                "tensor": TOKENIZER_TENSOR,
                "bytes": len(checkpoint.tokenizer_json),
                "keccak256": "0x" + keccak256(checkpoint.tokenizer_json).hex(),
            },
            "max_length": length,
            "pad_id": cfg.pad_token_id,
            "normalized": checkpoint.normalize,
        },
    }
    input_spec = {"name": "ids", "shape": [length], "scale": "1", "dtype": "int32"}
    out_layer = builder.layers[-1]
    outputs = [{"name": output, "dtype": out_layer.out_dtype, "scale": out_layer.out_scale}]
    return ModelPackage.build(input_spec, builder.layers, outputs, builder.tensors, metadata)
