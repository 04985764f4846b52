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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from aicommons.runtime import avx2, vnni
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
    demo_dir: Path, rounds: int = 3, progress: Callable[[str], None] | None = None
) -> list[BenchRow]:
    """Time every model at batch 1 and 256: ours (int8 input, exact), ORT fp32, ORT int8 dynamic.

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
    return rows
