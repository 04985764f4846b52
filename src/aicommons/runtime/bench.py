"""`aic bench runtime`: the exact integer runtime against onnxruntime fp32 and int8, same models.

Measures and reports; asserts no target. onnxruntime is imported only inside `run_runtime_bench`,
never by the runtime itself.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from aicommons.runtime import avx2, vnni
from aicommons.runtime.bert import Checkpoint
from aicommons.runtime.package import ModelPackage
from aicommons.runtime.quantize import quantize_onnx

BATCHES = (1, 256)
THREADS = 2
RANDOM_MLP_SIZES = (784, 512, 512, 10)


@dataclass(frozen=True)
class BenchRow:
    """One model at one batch size. `cpu` is the CPU measured and `matmul_path` the product path
    ours ran on it (`vnni` names the width in `cpu`); `load_avg_1m` is the machine's 1-minute
    load average when the row was timed (the ratios are measured together, in one run)."""

    model: str
    batch: int
    ours_ms: float
    ort_fp32_ms: float
    ort_int8_ms: float
    ratio_vs_ort_fp32: float
    ratio_vs_ort_int8: float
    acc_float: float | None
    acc_int8: float | None
    top1_agreement: float | None
    cpu: str
    matmul_path: str
    load_avg_1m: float
    cosine_mean: float | None = None
    """Text models: mean cosine of our embeddings to the float model's (None otherwise)."""
    cosine_min: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def cpu_description() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else `platform`), its logical CPU count and the
    int8 instructions the runtime uses on it, e.g. `Intel(R) Xeon(R) Processor, 2 CPUs,
    avx512vnni` or `AMD EPYC, 2 CPUs, avx2`."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    isa = vnni.host_isa()
    int8 = isa.name if isa else "avx2" if avx2.available() else "no VNNI or AVX2"
    return f"{name}, {os.cpu_count()} CPUs, {int8}"


def random_mlp_onnx(sizes: tuple[int, ...] = RANDOM_MLP_SIZES, seed: int = 0) -> bytes:
    """A float MLP with He-initialised random weights (Gemm + Relu), as ONNX bytes."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    current = "input"
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        weight = rng.normal(0, np.sqrt(2 / fan_in), (fan_out, fan_in)).astype(np.float32)
        bias = rng.normal(0, 0.1, fan_out).astype(np.float32)
        inits += [
            numpy_helper.from_array(weight, f"fc{i}.w"),
            numpy_helper.from_array(bias, f"fc{i}.b"),
        ]
        nodes.append(
            helper.make_node(
                "Gemm", [current, f"fc{i}.w", f"fc{i}.b"], [f"fc{i}"], name=f"fc{i}", transB=1
            )
        )
        current = f"fc{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [current], [f"relu{i}"], name=f"relu{i}"))
            current = f"relu{i}"
    graph = helper.make_graph(
        nodes,
        "random_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", sizes[0]])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["N", sizes[-1]])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def time_call(call: Callable[[], object], budget_s: float = 0.25, min_calls: int = 5) -> float:
    """Median wall time of one call in ms, after warm-up, over about `budget_s` seconds."""
    for _ in range(3):
        call()
    samples = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < min_calls or time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


@dataclass
class _Model:
    name: str
    onnx_bytes: bytes
    x_calib: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray | None


def _models(demo_dir: Path) -> list[_Model]:
    data = np.load(demo_dir / "digits.npz")
    x_test, y_test, x_calib = data["x_test"], data["y_test"], data["x_calib"]
    rng = np.random.default_rng(1)
    random_x = rng.normal(0, 1, (512, RANDOM_MLP_SIZES[0])).astype(np.float32)
    return [
        _Model("digits_mlp", (demo_dir / "digits_mlp.onnx").read_bytes(), x_calib, x_test, y_test),
        _Model(
            "digits_cnn",
            (demo_dir / "digits_cnn.onnx").read_bytes(),
            x_calib.reshape(-1, 1, 8, 8),
            x_test.reshape(-1, 1, 8, 8),
            y_test,
        ),
        _Model("mlp_784_512_512_10", random_mlp_onnx(), random_x[:256], random_x[256:], None),
    ]


def _batch(x: np.ndarray, size: int) -> np.ndarray:
    reps = -(-size // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:size])


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` inside, restored after."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved


def run_runtime_bench(
    demo_dir: Path,
    rounds: int = 3,
    progress: Callable[[str], None] | None = None,
    minilm_dir: Path | None = None,
    minilm_calib: Sequence[str] = (),
    minilm_texts: Sequence[str] = (),
) -> list[BenchRow]:
    """Time every model at batch 1 and 256: ours (int8 input, exact), ORT fp32, ORT int8 dynamic;
    with `minilm_dir` also MiniLM (quantised from that checkpoint with `minilm_calib`, cosine on
    `minilm_texts`) at batch 1 and 32 (`minilm_rows`).

    Each timing is the best of `rounds` interleaved medians, which damps noise from other load.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from threadpoolctl import threadpool_limits

    cpu = cpu_description()
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    rows = []
    # Ours runs its float products on OpenBLAS and its AVX2 products on its own threads: give
    # both the same thread count as onnxruntime.
    with (
        threadpool_limits(limits=THREADS, user_api="blas"),
        _environment(avx2.THREADS_ENV, str(THREADS)),
        tempfile.TemporaryDirectory(prefix="aic-bench-") as work,
    ):
        for model in _models(demo_dir):
            if progress:
                progress(f"quantising {model.name}")
            package: ModelPackage = quantize_onnx(model.onnx_bytes, model.x_calib)
            fp32_path = Path(work) / f"{model.name}.onnx"
            int8_path = Path(work) / f"{model.name}.int8.onnx"
            fp32_path.write_bytes(model.onnx_bytes)
            quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
            providers = ["CPUExecutionProvider"]
            fp32 = ort.InferenceSession(str(fp32_path), options, providers=providers)
            int8 = ort.InferenceSession(str(int8_path), options, providers=providers)
            input_name = fp32.get_inputs()[0].name
            acc_float = acc_int8 = agreement = None
            if model.y_eval is not None:
                float_top1 = fp32.run(None, {input_name: model.x_eval})[0].argmax(axis=1)
                ours_top1 = package.run(package.quantize_input(model.x_eval)).argmax(axis=1)
                acc_float = float((float_top1 == model.y_eval).mean())
                acc_int8 = float((ours_top1 == model.y_eval).mean())
                agreement = float((float_top1 == ours_top1).mean())
            for batch in BATCHES:
                x_float = _batch(model.x_eval, batch).astype(np.float32)
                x_int8 = package.quantize_input(x_float)
                if progress:
                    progress(f"timing {model.name} at batch {batch}")
                best = {"ours": np.inf, "fp32": np.inf, "int8": np.inf}
                for _ in range(rounds):
                    feed = {input_name: x_float}
                    calls = {
                        "ours": lambda p=package, x=x_int8: p.run(x),
                        "fp32": lambda s=fp32, f=feed: s.run(None, f),
                        "int8": lambda s=int8, f=feed: s.run(None, f),
                    }
                    for key, call in calls.items():
                        best[key] = min(best[key], time_call(call))
                rows.append(
                    BenchRow(
                        model=model.name,
                        batch=batch,
                        ours_ms=round(best["ours"], 4),
                        ort_fp32_ms=round(best["fp32"], 4),
                        ort_int8_ms=round(best["int8"], 4),
                        ratio_vs_ort_fp32=round(best["ours"] / best["fp32"], 3),
                        ratio_vs_ort_int8=round(best["ours"] / best["int8"], 3),
                        acc_float=acc_float,
                        acc_int8=acc_int8,
                        top1_agreement=agreement,
                        cpu=cpu,
                        matmul_path=package.matmul_path,
                        load_avg_1m=round(os.getloadavg()[0], 2),
                    )
                )
    if minilm_dir is not None:
        from aicommons.runtime.bert import load_checkpoint
        from aicommons.runtime.bert_import import quantize_checkpoint

        if progress:
            progress("quantising minilm")
        package = quantize_checkpoint(minilm_dir, list(minilm_calib))
        checkpoint = load_checkpoint(minilm_dir)
        rows += minilm_rows(package, checkpoint, list(minilm_texts), rounds, progress)
    return rows


# -- all-MiniLM-L6-v2 ---------------------------------------------------------------------------

MINILM_BATCHES = (1, 32)
MINILM_LENGTH = 128


def minilm_onnx(checkpoint: Checkpoint, length: int = MINILM_LENGTH, opset: int = 17) -> bytes:
    """The float BERT sentence encoder as ONNX, built from the checkpoint's weights with onnx's
    helpers (no torch): inputs `input_ids` and `attention_mask` (int64 [N, length]), output the
    mean-pooled, L2-normalised embedding [N, hidden]. The same computation as
    `bert.float_forward` (checked by the tests), for onnxruntime's fp32 timing."""
    cfg = checkpoint.config
    w = checkpoint.weights
    heads, size, width = cfg.num_heads, cfg.head_size, cfg.hidden_size
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    counter = [0]

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str) -> str:
        weight = const(prefix + ".wt", w[prefix + ".weight"].T.copy())
        return node("Add", [node("MatMul", [x, weight]), const(prefix + ".b", w[prefix + ".bias"])])

    def norm(x: str, prefix: str) -> str:
        return node(
            "LayerNormalization",
            [
                x,
                const(prefix + ".g", w[prefix + ".weight"]),
                const(prefix + ".beta", w[prefix + ".bias"]),
            ],
            axis=-1,
            epsilon=cfg.layer_norm_eps,
        )

    position = (
        w["embeddings.position_embeddings.weight"][:length]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = node("Gather", [const("word", w["embeddings.word_embeddings.weight"]), "input_ids"])
    x = norm(
        node("Add", [x, const("position", position.astype(np.float32))]), "embeddings.LayerNorm"
    )
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    # [N, 1, 1, L]: 0 for a real key, -10000 for padding (as BERT adds to the scores).
    key_bias = node(
        "Mul",
        [
            node(
                "Sub",
                [
                    const("one", np.float32(1)),
                    node("Unsqueeze", [mask, const("axes12", np.array([1, 2]))]),
                ],
            ),
            const("neg", np.float32(-10000)),
        ],
    )
    split = const("split", np.array([0, length, heads, size]))
    merge = const("merge", np.array([0, length, width]))
    scale = const("scale", np.float32(1 / np.sqrt(size)))
    for i in range(cfg.num_layers):
        p = f"encoder.layer.{i}."
        q = node(
            "Transpose",
            [node("Reshape", [linear(x, p + "attention.self.query"), split])],
            perm=[0, 2, 1, 3],
        )
        k = node(
            "Transpose",
            [node("Reshape", [linear(x, p + "attention.self.key"), split])],
            perm=[0, 2, 3, 1],
        )
        v = node(
            "Transpose",
            [node("Reshape", [linear(x, p + "attention.self.value"), split])],
            perm=[0, 2, 1, 3],
        )
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), key_bias])
        probs = node("Softmax", [scores], axis=-1)
        context = node(
            "Reshape", [node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge]
        )
        attn = linear(context, p + "attention.output.dense")
        x = norm(node("Add", [attn, x]), p + "attention.output.LayerNorm")
        up = linear(x, p + "intermediate.dense")
        # Exact GELU: x/2 * (1 + erf(x / sqrt 2)).
        erf = node("Erf", [node("Mul", [up, const(f"rsqrt2_{i}", np.float32(1 / np.sqrt(2)))])])
        gelu = node(
            "Mul",
            [
                node("Mul", [up, node("Add", [erf, const(f"one_{i}", np.float32(1))])]),
                const(f"half_{i}", np.float32(0.5)),
            ],
        )
        x = norm(node("Add", [linear(gelu, p + "output.dense"), x]), p + "output.LayerNorm")
    weights = node("Unsqueeze", [mask, const("axis2", np.array([2]))])
    total = node(
        "ReduceSum", [node("Mul", [x, weights]), const("axis1", np.array([1]))], keepdims=0
    )
    count = node("ReduceSum", [weights, const("axis1b", np.array([1]))], keepdims=0)
    pooled = node("Div", [total, node("Max", [count, const("tiny", np.float32(1e-9))])])
    out = pooled
    if checkpoint.normalize:
        norm2 = node("ReduceL2", [pooled], axes=[1], keepdims=1)
        out = node("Div", [pooled, node("Max", [norm2, const("eps", np.float32(1e-12))])])
    graph = helper.make_graph(
        nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", length]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", length]),
        ],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", width])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def cosine_stats(ours: np.ndarray, floats: np.ndarray) -> tuple[float, float]:
    """(mean, min) of the row-wise cosine similarity of two embedding matrices."""
    a, b = ours.astype(np.float64), floats.astype(np.float64)
    cos = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.mean()), float(cos.min())


def minilm_rows(
    package: ModelPackage,
    checkpoint: Checkpoint,
    texts: list[str],
    rounds: int = 3,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """MiniLM at sequence length 128, batch 1 and 32: ours (the integer package on token ids)
    against onnxruntime fp32 and int8 (dynamic) on the float model (`minilm_onnx`); cosine of
    our embeddings to onnxruntime fp32's on `texts` (never calibration texts)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from threadpoolctl import threadpool_limits

    from aicommons.runtime.text import TextModel

    model = TextModel(package)
    length = model.tokenizer.max_length
    encoded = model.encode(texts)
    ids = encoded.ids
    feed_all = {"input_ids": ids.astype(np.int64), "attention_mask": encoded.mask.astype(np.int64)}
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    rows = []
    with (
        threadpool_limits(limits=THREADS, user_api="blas"),
        _environment(avx2.THREADS_ENV, str(THREADS)),
        tempfile.TemporaryDirectory(prefix="aic-bench-") as work,
    ):
        fp32_path, int8_path = Path(work) / "minilm.onnx", Path(work) / "minilm.int8.onnx"
        fp32_path.write_bytes(minilm_onnx(checkpoint, length))
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
        fp32 = ort.InferenceSession(str(fp32_path), options, providers=providers)
        int8 = ort.InferenceSession(str(int8_path), options, providers=providers)
        if progress:
            progress("minilm: embedding the cosine texts")
        floats = np.concatenate(
            [
                fp32.run(None, {k: v[s : s + 32] for k, v in feed_all.items()})[0]
                for s in range(0, len(ids), 32)
            ]
        )
        cos_mean, cos_min = cosine_stats(model.embed(texts).vectors, floats)
        for batch in MINILM_BATCHES:
            x = _batch(ids, batch)
            feed = {"input_ids": x.astype(np.int64), "attention_mask": (x != 0).astype(np.int64)}
            if progress:
                progress(f"timing minilm at batch {batch}")
            best = {"ours": np.inf, "fp32": np.inf, "int8": np.inf}
            calls = {
                "ours": lambda x=x: package.run(x),
                "fp32": lambda f=feed: fp32.run(None, f),
                "int8": lambda f=feed: int8.run(None, f),
            }
            for _ in range(rounds):
                for key, call in calls.items():
                    best[key] = min(best[key], time_call(call, budget_s=1.0, min_calls=3))
            rows.append(
                BenchRow(
                    model="minilm",
                    batch=batch,
                    ours_ms=round(best["ours"], 4),
                    ort_fp32_ms=round(best["fp32"], 4),
                    ort_int8_ms=round(best["int8"], 4),
                    ratio_vs_ort_fp32=round(best["ours"] / best["fp32"], 3),
                    ratio_vs_ort_int8=round(best["ours"] / best["int8"], 3),
                    acc_float=None,
                    acc_int8=None,
                    top1_agreement=None,
                    cpu=cpu_description(),
                    matmul_path=package.matmul_path,
                    load_avg_1m=round(os.getloadavg()[0], 2),
                    cosine_mean=round(cos_mean, 6),
                    cosine_min=round(cos_min, 6),
                )
            )
    return rows
