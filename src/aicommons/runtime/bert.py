"""BERT sentence-embedding checkpoints (sentence-transformers layout): read, check, run in float.

`load_checkpoint` reads a checkpoint directory (config.json, model.safetensors, tokenizer.json,
the pooling config) and refuses a missing, unreadable or mismatched file with one line naming
it. `float_forward` is the float model in numpy (no torch): the importer's calibration source
and the fidelity baseline. It never produces a committed result; nothing here is integer
semantics.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from aicommons.runtime.errors import CheckpointError

SUPPORTED_ACTIVATIONS = ("gelu",)
"""`hidden_act` values of the float model we import: exact (erf) GELU only."""


@dataclass(frozen=True)
class BertConfig:
    """The architecture fields of config.json the import depends on."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    pad_token_id: int

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint: config, float32 weights by name, tokenizer bytes and pooling."""

    path: Path
    config: BertConfig
    weights: Mapping[str, np.ndarray]
    tokenizer_json: bytes
    max_seq_length: int
    """sentence-transformers' truncation length (sentence_bert_config.json), in tokens."""
    normalize: bool
    """The embedding is L2-normalised after pooling (a Normalize module in modules.json)."""

    def layer(self, index: int, name: str) -> np.ndarray:
        return self.weights[f"encoder.layer.{index}.{name}"]


# -- reading a checkpoint -------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint is missing {what}: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON: {exc}") from None


def _config_field(config: Mapping[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = config.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CheckpointError(f"config.json field {key!r} must be {kind.__name__}, got {value!r}")
    if kind is int and value < 0:
        raise CheckpointError(f"config.json field {key!r} must not be negative, got {value}")
    return value


def read_config(config: Mapping[str, Any]) -> BertConfig:
    """The architecture from config.json; anything but an absolute-position BERT with exact GELU
    is refused by name."""
    if not isinstance(config, Mapping):
        raise CheckpointError("config.json is not a JSON object")
    if config.get("model_type") != "bert":
        raise CheckpointError(
            f"config.json model_type {config.get('model_type')!r} is not supported (only 'bert')"
        )
    act = config.get("hidden_act")
    if act not in SUPPORTED_ACTIVATIONS:
        raise CheckpointError(f"config.json hidden_act {act!r} is not supported (only 'gelu')")
    position = config.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise CheckpointError(
            f"config.json position_embedding_type {position!r} is not supported (only absolute)"
        )
    parsed = BertConfig(
        vocab_size=_config_field(config, "vocab_size", int),
        hidden_size=_config_field(config, "hidden_size", int),
        num_layers=_config_field(config, "num_hidden_layers", int),
        num_heads=_config_field(config, "num_attention_heads", int),
        intermediate_size=_config_field(config, "intermediate_size", int),
        max_position_embeddings=_config_field(config, "max_position_embeddings", int),
        type_vocab_size=_config_field(config, "type_vocab_size", int, 2),
        layer_norm_eps=_config_field(config, "layer_norm_eps", float, 1e-12),
        pad_token_id=_config_field(config, "pad_token_id", int, 0),
    )
    if min(parsed.vocab_size, parsed.hidden_size, parsed.num_layers, parsed.num_heads) < 1:
        raise CheckpointError("config.json sizes must be positive")
    if parsed.hidden_size % parsed.num_heads:
        raise CheckpointError(
            f"config.json hidden_size {parsed.hidden_size} is not a multiple of "
            f"num_attention_heads {parsed.num_heads}"
        )
    return parsed


def expected_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """Every weight the float model reads, with its shape (pooler and position_ids unused)."""
    h, f = config.hidden_size, config.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (config.vocab_size, h),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, h),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(config.num_layers):
        prefix = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes[f"{prefix}attention.self.{name}.weight"] = (h, h)
            shapes[f"{prefix}attention.self.{name}.bias"] = (h,)
        shapes[f"{prefix}attention.output.dense.weight"] = (h, h)
        shapes[f"{prefix}attention.output.dense.bias"] = (h,)
        shapes[f"{prefix}intermediate.dense.weight"] = (f, h)
        shapes[f"{prefix}intermediate.dense.bias"] = (f,)
        shapes[f"{prefix}output.dense.weight"] = (h, f)
        shapes[f"{prefix}output.dense.bias"] = (h,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{prefix}{norm}.weight"] = (h,)
            shapes[f"{prefix}{norm}.bias"] = (h,)
    return shapes


def _read_weights(path: Path, config: BertConfig) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint is missing model.safetensors: {path}")
    try:
        raw = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot read {path}: {first}") from None
    # Some exports prefix every name with the architecture ("bert.embeddings...").
    if not any(name.startswith("embeddings.") for name in raw):
        raw = {name.removeprefix("bert."): value for name, value in raw.items()}
    weights = {}
    for name, shape in expected_shapes(config).items():
        if name not in raw:
            raise CheckpointError(f"model.safetensors has no tensor {name!r}")
        value = raw[name]
        if value.dtype.kind != "f":
            raise CheckpointError(f"model.safetensors tensor {name!r} is {value.dtype}, not float")
        if tuple(value.shape) != shape:
            raise CheckpointError(
                f"model.safetensors tensor {name!r} has shape {list(value.shape)}, "
                f"config.json implies {list(shape)} (mismatched files?)"
            )
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"model.safetensors tensor {name!r} holds NaN or infinity")
        weights[name] = value.astype(np.float32)
    return weights


def _pooling(directory: Path, hidden_size: int) -> bool:
    """Check the pooling is masked mean pooling; return whether a Normalize module follows."""
    modules_path = directory / "modules.json"
    pooling_dir, normalize = "1_Pooling", False
    if modules_path.is_file():
        modules = _read_json(modules_path, "modules.json")
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise CheckpointError("modules.json is not a list of module objects")
        types = [str(m.get("type", "")) for m in modules]
        pooling = [m for m in modules if str(m.get("type", "")).endswith(".Pooling")]
        if len(pooling) != 1:
            raise CheckpointError("modules.json must list exactly one Pooling module")
        pooling_dir = str(pooling[0].get("path", ""))
        normalize = any(t.endswith(".Normalize") for t in types)
        unknown = [t for t in types if t.rsplit(".", 1)[-1] not in _MODULES]
        if unknown:
            raise CheckpointError(f"modules.json module {unknown[0]!r} is not supported")
    config = _read_json(directory / pooling_dir / "config.json", "the pooling config")
    if not isinstance(config, dict):
        raise CheckpointError("the pooling config is not a JSON object")
    modes = sorted(k for k, v in config.items() if k.startswith("pooling_mode_") and v is True)
    if modes != ["pooling_mode_mean_tokens"]:
        raise CheckpointError(
            f"pooling {modes or 'none'} is not supported (only pooling_mode_mean_tokens)"
        )
    dimension = config.get("word_embedding_dimension")
    if dimension != hidden_size:
        raise CheckpointError(
            f"pooling word_embedding_dimension {dimension!r} != hidden_size {hidden_size} "
            "(mismatched files?)"
        )
    return normalize


_MODULES = ("Transformer", "Pooling", "Normalize")


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read and check a sentence-transformers / BERT checkpoint directory.

    Needs config.json, model.safetensors, tokenizer.json and a mean-pooling config
    (1_Pooling/config.json or the path modules.json gives); sentence_bert_config.json, when
    present, gives the truncation length (else min(512, max_position_embeddings)).
    Raises CheckpointError naming the first missing, unreadable or mismatched file.
    """
    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {path}")
    config = read_config(_read_json(path / "config.json", "config.json"))
    tokenizer_path = path / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise CheckpointError(f"checkpoint is missing tokenizer.json: {tokenizer_path}")
    tokenizer_json = tokenizer_path.read_bytes()
    normalize = _pooling(path, config.hidden_size)
    max_seq_length = min(512, config.max_position_embeddings)
    st_config_path = path / "sentence_bert_config.json"
    if st_config_path.is_file():
        st_config = _read_json(st_config_path, "sentence_bert_config.json")
        value = st_config.get("max_seq_length") if isinstance(st_config, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or not value > 2:
            raise CheckpointError(
                f"sentence_bert_config.json max_seq_length must be an integer > 2, got {value!r}"
            )
        if value > config.max_position_embeddings:
            raise CheckpointError(
                f"sentence_bert_config.json max_seq_length {value} exceeds "
                f"max_position_embeddings {config.max_position_embeddings}"
            )
        max_seq_length = value
    weights = _read_weights(path / "model.safetensors", config)
    return Checkpoint(path, config, weights, tokenizer_json, max_seq_length, normalize)


# -- the float model ------------------------------------------------------------------------------


@numba.vectorize(["float64(float64)", "float32(float32)"], cache=True)
def erf(x: float) -> float:
    """The error function, elementwise (libm's erf, compiled by numba: no scipy)."""
    return math.erf(x)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU: x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)), in x's float dtype."""
    return 0.5 * x * (1.0 + erf(x * x.dtype.type(1 / math.sqrt(2.0))))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


Capture = Callable[[str, np.ndarray], None]
"""Called with (value name, float value) for each named intermediate value (calibration)."""


def float_forward(
    checkpoint: Checkpoint,
    ids: np.ndarray,
    mask: np.ndarray,
    capture: Capture | None = None,
    dtype: type = np.float32,
) -> np.ndarray:
    """Sentence embeddings [N, hidden] of token ids [N, L] with attention mask [N, L] (1 = real).

    BERT as sentence-transformers runs it: word + position + token-type-0 embeddings, layer
    norm; per layer self-attention (scores / sqrt(head size), masked keys excluded), output
    projection, residual, layer norm, GELU feed-forward, residual, layer norm; then masked mean
    pooling and (if the checkpoint says so) L2 normalisation. `capture(name, value)` sees every
    intermediate under its name in the integer graph (`bert_import`: "embed", "l0.q", ...).
    """
    cfg = checkpoint.config
    w = checkpoint.weights
    note = capture or (lambda name, value: None)
    ids = np.asarray(ids)
    batch, length = ids.shape
    valid = np.asarray(mask).astype(bool)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:length]
        + w["embeddings.token_type_embeddings.weight"][0]
    ).astype(dtype)
    note("embed", x)
    x = layer_norm(
        x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.layer_norm_eps
    )
    note("embed.norm", x)
    heads, size = cfg.num_heads, cfg.head_size
    key_bias = np.where(valid, 0.0, -np.inf).astype(dtype)[:, None, None, :]  # [N, 1, 1, L]
    for i in range(cfg.num_layers):
        p = f"l{i}."

        def linear(value: np.ndarray, name: str, layer: int = i) -> np.ndarray:
            weight = checkpoint.layer(layer, name + ".weight").astype(dtype, copy=False)
            return value @ weight.T + checkpoint.layer(layer, name + ".bias")

        q = linear(x, "attention.self.query")
        k = linear(x, "attention.self.key")
        v = linear(x, "attention.self.value")
        for name, value in (("q", q), ("k", k), ("v", v)):
            note(p + name, value)
        # Contiguous stacks: numpy hands stacked products to BLAS only then.
        qh = np.ascontiguousarray(q.reshape(batch, length, heads, size).transpose(0, 2, 1, 3))
        kh = np.ascontiguousarray(k.reshape(batch, length, heads, size).transpose(0, 2, 3, 1))
        vh = np.ascontiguousarray(v.reshape(batch, length, heads, size).transpose(0, 2, 1, 3))
        scores = qh @ kh / math.sqrt(size)
        note(p + "scores", np.where(np.isfinite(key_bias), scores, 0.0))
        scores = scores + key_bias
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        note(p + "probs", probs)
        context = (probs @ vh).transpose(0, 2, 1, 3).reshape(batch, length, cfg.hidden_size)
        note(p + "context", context)
        attn = linear(context, "attention.output.dense")
        note(p + "attn_out", attn)
        x = x + attn
        note(p + "attn_res", x)
        x = layer_norm(
            x,
            checkpoint.layer(i, "attention.output.LayerNorm.weight"),
            checkpoint.layer(i, "attention.output.LayerNorm.bias"),
            cfg.layer_norm_eps,
        )
        note(p + "attn_norm", x)
        hidden = linear(x, "intermediate.dense")
        note(p + "ffn_in", hidden)
        hidden = gelu(hidden)
        note(p + "gelu", hidden)
        out = linear(hidden, "output.dense")
        note(p + "ffn_out", out)
        x = x + out
        note(p + "ffn_res", x)
        x = layer_norm(
            x,
            checkpoint.layer(i, "output.LayerNorm.weight"),
            checkpoint.layer(i, "output.LayerNorm.bias"),
            cfg.layer_norm_eps,
        )
        note(p + "ffn_norm", x)
    weights = valid.astype(dtype)[:, :, None]
    pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    note("pool", pooled)
    if not checkpoint.normalize:
        return pooled
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled / norms
