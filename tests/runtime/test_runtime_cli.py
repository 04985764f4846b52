"""`aic model quantize|run|inspect` and `aic bench runtime`: results, one-line errors, no leftovers.

Determinism across BLAS thread counts and both matmul paths is checked in fresh subprocesses,
because OpenBLAS reads its thread count once at import.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from aicommons.cli import main
from aicommons.demo import DIGITS_CNN, DIGITS_DATA, DIGITS_MLP
from aicommons.runtime import load_package
from aicommons.runtime.bench import random_mlp_onnx
from aicommons.runtime.kernels import available_matmul_paths
from aicommons.runtime.quantize import quantize_onnx


def invoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """Run the real entry point (with its one-line error handling) in-process."""
    monkeypatch.setattr(sys, "argv", ["aic", *argv])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and pattern in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    data = np.load(DIGITS_DATA)
    np.save(root / "calib.npy", data["x_calib"])
    np.save(root / "x.npy", data["x_test"][:25])
    package = quantize_onnx(DIGITS_MLP, data["x_calib"])
    package.save(root / "mlp.aicm")
    return {
        "root": root,
        "calib": root / "calib.npy",
        "x": root / "x.npy",
        "pkg": root / "mlp.aicm",
    }


def test_quantize_run_inspect_round_trip(monkeypatch, capsys, tmp_path, files) -> None:
    out = tmp_path / "m.aicm"
    code, stdout, _ = invoke(
        monkeypatch,
        capsys,
        "model",
        "quantize",
        str(DIGITS_MLP),
        "--calib",
        str(files["calib"]),
        "-o",
        str(out),
    )
    assert code == 0
    version = stdout.strip()
    package = load_package(out)
    assert version == "0x" + package.version_id.hex()

    y_path = tmp_path / "y.npy"
    code, stdout, _ = invoke(
        monkeypatch,
        capsys,
        "model",
        "run",
        str(out),
        "--input",
        str(files["x"]),
        "-o",
        str(y_path),
        "--json",
    )
    assert code == 0
    result = json.loads(stdout)
    x = np.load(files["x"])
    expected = package.run(package.quantize_input(x))
    assert result == {"version_id": version, "argmax": expected.argmax(axis=1).tolist()}
    y = np.load(y_path)
    assert y.dtype == np.float32 and y.shape == (25, 10)
    np.testing.assert_array_equal(y, package.dequantize_output(expected))

    code, stdout, _ = invoke(monkeypatch, capsys, "model", "inspect", str(out), "--json")
    info = json.loads(stdout)
    assert info["version_id"] == version
    assert info["parameter_count"] == 64 * 64 + 32 * 64 + 10 * 32 + 3 * (64 + 32 + 10)
    assert info["macs_per_sample"] == 64 * 64 + 32 * 64 + 10 * 32
    assert [layer["op"] for layer in info["layers"]] == ["dense", "dense", "dense"]
    assert len(info["tensors"]) == 12 and all(t["root"].startswith("0x") for t in info["tensors"])
    code, stdout, _ = invoke(monkeypatch, capsys, "model", "inspect", str(out))
    assert code == 0 and version in stdout and "fc0.weight" in stdout


def unsupported_model(path: Path) -> Path:
    graph = helper.make_graph(
        [
            helper.make_node("Sigmoid", ["x"], ["s"], name="gate"),
            helper.make_node("Erf", ["s"], ["y"], name="erf"),
        ],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_quantize_errors_are_one_line_and_write_nothing(
    monkeypatch, capsys, tmp_path, files
) -> None:
    out = tmp_path / "out.aicm"
    code, _, err = invoke(monkeypatch, capsys, "model", "quantize", str(DIGITS_MLP), "-o", str(out))
    assert_one_line_error(code, err, "calibration data is required")
    code, _, err = invoke(
        monkeypatch,
        capsys,
        "model",
        "quantize",
        str(DIGITS_MLP),
        "--calib",
        str(tmp_path / "no.npy"),
        "-o",
        str(out),
    )
    assert_one_line_error(code, err, "calibration file not found")
    bad = unsupported_model(tmp_path / "bad.onnx")
    code, _, err = invoke(
        monkeypatch,
        capsys,
        "model",
        "quantize",
        str(bad),
        "--calib",
        str(files["calib"]),
        "-o",
        str(out),
    )
    assert_one_line_error(code, err, "unsupported ONNX ops: Sigmoid ('gate'), Erf ('erf')")
    short_calib = tmp_path / "short.npy"
    np.save(short_calib, np.zeros((5, 63), np.float32))
    code, _, err = invoke(
        monkeypatch,
        capsys,
        "model",
        "quantize",
        str(DIGITS_CNN),
        "--calib",
        str(short_calib),
        "-o",
        str(out),
    )
    assert_one_line_error(
        code,
        err,
        "calibration data shape [5, 63] does not match the model input [N, 1, 8, 8] or flat "
        "rows [N, 64]",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "short.npy"]


def test_flat_samples_are_reshaped_for_calibration_and_run(
    monkeypatch, capsys, tmp_path, files
) -> None:
    """The digits CNN takes [N, 1, 8, 8]; flat [N, 64] rows (C order) work for both commands."""
    out = tmp_path / "cnn.aicm"
    code, stdout, _ = invoke(
        monkeypatch,
        capsys,
        "model",
        "quantize",
        str(DIGITS_CNN),
        "--calib",
        str(files["calib"]),
        "-o",
        str(out),
    )
    assert code == 0
    data = np.load(DIGITS_DATA)
    direct = quantize_onnx(DIGITS_CNN, data["x_calib"].reshape(-1, 1, 8, 8))
    assert stdout.split()[-1] == "0x" + direct.version_id.hex()
    package = load_package(out)
    x = data["x_test"][:25]
    expected = package.run(package.quantize_input(x.reshape(-1, 1, 8, 8)))
    assert np.array_equal(package.run(package.quantize_input(x)), expected)
    assert np.array_equal(package.run(package.quantize_input(x).reshape(25, 64)), expected)
    y = tmp_path / "y.npy"
    code, _, _ = invoke(
        monkeypatch, capsys, "model", "run", str(out), "--input", str(files["x"]), "-o", str(y)
    )
    assert code == 0
    assert np.array_equal(np.load(y), package.dequantize_output(expected))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 65), np.int8))
    code, _, err = invoke(
        monkeypatch, capsys, "model", "run", str(out), "--input", str(wrong), "-o", str(y)
    )
    assert_one_line_error(
        code, err, "input shape [2, 65] does not match the model input [N, 1, 8, 8] or flat rows"
    )


def test_run_errors_are_one_line_and_write_nothing(monkeypatch, capsys, tmp_path, files) -> None:
    data = files["pkg"].read_bytes()
    truncated = tmp_path / "truncated.aicm"
    truncated.write_bytes(data[: len(data) - 100])
    tampered = tmp_path / "tampered.aicm"
    tampered.write_bytes(data[:-1] + bytes([data[-1] ^ 0x40]))
    y = tmp_path / "y.npy"
    x = files["x"]
    cases = [
        ((str(truncated), "--input", str(x)), "package is truncated (tensor data has"),
        ((str(tampered), "--input", str(x)), "does not match its Merkle root"),
        ((str(tmp_path / "missing.aicm"), "--input", str(x)), "package file not found"),
    ]
    wrong_shape = tmp_path / "wrong_shape.npy"
    np.save(wrong_shape, np.zeros((3, 63), np.int8))
    nan_input = tmp_path / "nan.npy"
    np.save(nan_input, np.full((2, 64), np.nan, np.float32))
    complex_input = tmp_path / "complex.npy"
    np.save(complex_input, np.zeros((2, 64), np.complex64))
    cases += [
        (
            (str(files["pkg"]), "--input", str(wrong_shape)),
            "input shape [3, 63] does not match the model input [N, 64]",
        ),
        ((str(files["pkg"]), "--input", str(nan_input)), "NaN"),
        ((str(files["pkg"]), "--input", str(complex_input)), "input must be numeric"),
    ]
    for args, pattern in cases:
        code, _, err = invoke(monkeypatch, capsys, "model", "run", *args, "-o", str(y))
        assert_one_line_error(code, err, pattern)
    assert not y.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_console_script_prints_one_line_without_traceback(tmp_path, files) -> None:
    aic = shutil.which("aic", path=str(Path(sys.executable).parent))
    assert aic is not None
    truncated = tmp_path / "t.aicm"
    truncated.write_bytes(files["pkg"].read_bytes()[:50])
    completed = subprocess.run(
        [aic, "model", "inspect", str(truncated)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 1
    assert completed.stderr.strip().startswith("error: package is truncated")
    assert "Traceback" not in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


DETERMINISM_SCRIPT = """
import hashlib, sys
import numpy as np
from aicommons.runtime import load_package
digest = hashlib.sha256()
for pkg_path, x_path in zip(sys.argv[1::2], sys.argv[2::2]):
    package = load_package(pkg_path)
    x = np.load(x_path)
    trace = package.trace(x[:4])
    digest.update(package.run(x).tobytes())
    for root in trace.roots:
        digest.update(root)
print(package.matmul_path, digest.hexdigest())
"""


def test_outputs_identical_across_blas_threads_and_matmul_paths(tmp_path) -> None:
    data = np.load(DIGITS_DATA)
    cnn = quantize_onnx(DIGITS_CNN, data["x_calib"].reshape(-1, 1, 8, 8))
    wide = quantize_onnx(
        random_mlp_onnx((1500, 48, 10), seed=3), np.random.default_rng(0).normal(0, 1, (64, 1500))
    )
    rng = np.random.default_rng(4)
    args = []
    for name, package, x in [
        ("cnn", cnn, cnn.quantize_input(data["x_test"][:300].reshape(-1, 1, 8, 8))),
        ("wide", wide, rng.integers(-128, 128, (300, 1500)).astype(np.int8)),
    ]:
        package.save(tmp_path / f"{name}.aicm")
        np.save(tmp_path / f"{name}.npy", x)
        args += [str(tmp_path / f"{name}.aicm"), str(tmp_path / f"{name}.npy")]
        np.testing.assert_array_equal(package.run(x[:3]), package.run_reference(x[:3]))
    results = set()
    for threads in ("1", "2"):
        for path in available_matmul_paths():  # vnni too where the CPU has it
            env = {
                **os.environ,
                "OPENBLAS_NUM_THREADS": threads,
                "OMP_NUM_THREADS": threads,
                "AICOMMONS_THREADS": threads,
                "AICOMMONS_MATMUL_PATH": path,
            }
            completed = subprocess.run(
                [sys.executable, "-c", DETERMINISM_SCRIPT, *args],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            used_path, digest = completed.stdout.split()
            assert used_path == path
            results.add(digest)
    expected = hashlib.sha256()
    for name, package in (("cnn", cnn), ("wide", wide)):
        x = np.load(tmp_path / f"{name}.npy")
        trace = package.trace(x[:4])
        expected.update(package.run(x).tobytes())
        for root in trace.roots:
            expected.update(root)
    assert results == {expected.hexdigest()}


def test_bench_runtime_reports_every_model_and_batch(monkeypatch, capsys) -> None:
    import aicommons.runtime.bench as bench

    threads_seen = set()

    def time_call(call, budget_s=0.0, min_calls=1) -> float:  # noqa: ANN001
        threads_seen.add(os.environ.get("AICOMMONS_THREADS"))
        return bench.statistics.median([1.0])

    monkeypatch.delenv("AICOMMONS_THREADS", raising=False)
    monkeypatch.setattr(bench, "time_call", time_call)
    code, stdout, _ = invoke(
        monkeypatch, capsys, "bench", "runtime", "--json", "--rounds", "1", "--no-minilm"
    )
    assert code == 0
    # Ours gets onnxruntime's thread count while timed, and the environment is left as found.
    assert threads_seen == {str(bench.THREADS)} and "AICOMMONS_THREADS" not in os.environ
    rows = json.loads(stdout)
    keys = {
        "cosine_mean",
        "cosine_min",
        "model",
        "batch",
        "ours_ms",
        "ort_fp32_ms",
        "ort_int8_ms",
        "ratio_vs_ort_fp32",
        "ratio_vs_ort_int8",
        "acc_float",
        "acc_int8",
        "top1_agreement",
        "cpu",
        "matmul_path",
        "load_avg_1m",
    }
    assert [(r["model"], r["batch"]) for r in rows] == [
        (model, batch)
        for model in ("digits_mlp", "digits_cnn", "mlp_784_512_512_10")
        for batch in (1, 256)
    ]
    assert all(set(r) == keys for r in rows)
    assert all(r["matmul_path"] == available_matmul_paths()[0] and r["cpu"] for r in rows)
    for row in rows[:4]:
        assert row["top1_agreement"] >= 0.99
        assert row["acc_float"] - row["acc_int8"] <= 0.005


def test_run_takes_integer_inputs_as_int8_values(monkeypatch, capsys, tmp_path, files) -> None:
    """Issue 14 item 13: a receipt's committed input fed back as JSON integers or an int64 .npy
    gives the same outputs as the int8 array (it was re-quantised as floats: another label)."""
    package = load_package(files["pkg"])
    x = package.quantize_input(np.load(files["x"]))
    expected = package.dequantize_output(package.run(x))
    sources = {"int8.npy": x, "int64.npy": x.astype(np.int64)}
    for name, array in sources.items():
        np.save(tmp_path / name, array)
    (tmp_path / "ints.json").write_text(json.dumps(x.tolist()))
    (tmp_path / "one.json").write_text(json.dumps(x[3].tolist()))
    for name in (*sources, "ints.json", "one.json"):
        y = tmp_path / f"y-{name}.npy"
        code, stdout, err = invoke(
            monkeypatch,
            capsys,
            "model",
            "run",
            str(files["pkg"]),
            "--input",
            str(tmp_path / name),
            "-o",
            str(y),
            "--json",
        )
        assert code == 0, err
        want = expected[3:4] if name == "one.json" else expected
        np.testing.assert_array_equal(np.load(y), want, err_msg=name)
        assert json.loads(stdout)["argmax"] == want.argmax(axis=1).tolist()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([[0] * 10 + [128] + [0] * 53]))
    code, _, err = invoke(
        monkeypatch, capsys, "model", "run", str(files["pkg"]), "--input", str(bad)
    )
    assert_one_line_error(code, err, "input value 128 at index [0, 10] is outside int8 [-128, 127]")
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps([[False] * 64]))
    code, _, err = invoke(
        monkeypatch, capsys, "model", "run", str(files["pkg"]), "--input", str(flags)
    )
    assert_one_line_error(code, err, "holds false at index [0, 0]; expected a number")


def test_run_computes_first_and_never_overwrites_its_sources(
    monkeypatch, capsys, tmp_path, files
) -> None:
    """Issue 14 item 14: an empty input wrote y.npy and then failed; -o could silently replace
    the package or the input. Now: refused by name, and nothing is written or changed."""
    package = tmp_path / "m.aicm"
    shutil.copy(files["pkg"], package)
    x = tmp_path / "x.npy"
    shutil.copy(files["x"], x)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 64), np.float32))
    y = tmp_path / "y.npy"
    code, _, err = invoke(
        monkeypatch, capsys, "model", "run", str(package), "--input", str(empty), "-o", str(y)
    )
    assert_one_line_error(code, err, "input holds no samples")
    assert not y.exists()
    (tmp_path / "link.npy").symlink_to(x)
    os.link(package, tmp_path / "hard.aicm")
    before = {p.name: p.read_bytes() for p in (package, x)}
    for target, what in [
        (package, f"it is the model package {package}"),
        (x, f"it is the input {x}"),
        (tmp_path / "link.npy", f"it is the input {x}"),
        (tmp_path / "hard.aicm", f"it is the model package {package}"),
        (tmp_path / "sub" / ".." / "x.npy", f"it is the input {x}"),
    ]:
        code, _, err = invoke(
            monkeypatch, capsys, "model", "run", str(package), "--input", str(x), "-o", str(target)
        )
        assert_one_line_error(code, err, f"refusing to write {target}: {what}")
    assert {p.name: p.read_bytes() for p in (package, x)} == before
    model = tmp_path / "model.onnx"
    shutil.copy(DIGITS_MLP, model)
    for target, role in [(model, "source model"), (files["calib"], "calibration file")]:
        code, _, err = invoke(
            monkeypatch,
            capsys,
            "model",
            "quantize",
            str(model),
            "--calib",
            str(files["calib"]),
            "-o",
            str(target),
        )
        assert_one_line_error(code, err, f"refusing to write {target}: it is the {role}")
    assert model.read_bytes() == DIGITS_MLP.read_bytes()
