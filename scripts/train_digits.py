"""Train the shipped demo models (digits MLP and CNN) with numpy and export them as float ONNX.

Reproducible: fixed split and seeds, plain numpy (no torch). Needs scikit-learn only for the
bundled 8x8 digits data; the runtime, tests and benchmarks read the files this writes instead.

    .venv/bin/python scripts/train_digits.py

writes src/aicommons/demo/digits_mlp.onnx, digits_cnn.onnx and digits.npz (held-out + calib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEMO_DIR = Path(__file__).resolve().parent.parent / "src" / "aicommons" / "demo"
SPLIT_SEED = 20260101
TRAIN_SEED = 7
TEST_SIZE = 360
CALIB_SIZE = 256
OPSET = 13


def load_split() -> dict[str, np.ndarray]:
    """Pixels scaled from 0..16 to [0, 1]; fixed permutation into train / held-out test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    calib = train[np.random.default_rng(SPLIT_SEED + 1).permutation(len(train))[:CALIB_SIZE]]
    return {
        "x_train": x[train],
        "y_train": y[train],
        "x_test": x[test],
        "y_test": y[test],
        "x_calib": x[calib],
    }


# -- tiny numpy autograd-free layers ----------------------------------------------------------


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(len(labels)), labels] + 1e-12).mean()
    grad = probs
    grad[np.arange(len(labels)), labels] -= 1.0
    return float(loss), grad / len(labels)


def im2col(x: np.ndarray, kernel: int, pad: int) -> np.ndarray:
    """x [N, C, H, W] -> [N, H*W, C*k*k] for stride 1, 'same' padding."""
    batch, channels, height, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((batch, channels, kernel, kernel, height, width), dtype=x.dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            cols[:, :, ky, kx] = padded[:, :, ky : ky + height, kx : kx + width]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(batch, height * width, -1)


def col2im(cols: np.ndarray, shape: tuple[int, ...], kernel: int, pad: int) -> np.ndarray:
    batch, channels, height, width = shape
    cols = cols.reshape(batch, height, width, channels, kernel, kernel).transpose(0, 3, 4, 5, 1, 2)
    padded = np.zeros((batch, channels, height + 2 * pad, width + 2 * pad), dtype=cols.dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            padded[:, :, ky : ky + height, kx : kx + width] += cols[:, :, ky, kx]
    return padded[:, :, pad : pad + height, pad : pad + width]


class Adam:
    def __init__(self, params: dict[str, np.ndarray], lr: float) -> None:
        self.params, self.lr, self.step_count = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.step_count += 1
        for key, grad in grads.items():
            self.m[key] = 0.9 * self.m[key] + 0.1 * grad
            self.v[key] = 0.999 * self.v[key] + 0.001 * grad * grad
            m_hat = self.m[key] / (1 - 0.9**self.step_count)
            v_hat = self.v[key] / (1 - 0.999**self.step_count)
            self.params[key] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


# -- MLP 64-64-32-10 ---------------------------------------------------------------------------

MLP_SIZES = (64, 64, 32, 10)


def mlp_forward(
    params: dict[str, np.ndarray], x: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    activations = [x]
    h = x
    layers = len(MLP_SIZES) - 1
    for i in range(layers):
        h = h @ params[f"w{i}"].T + params[f"b{i}"]
        if i < layers - 1:
            h = np.maximum(h, 0.0)
        activations.append(h)
    return h, activations


def train_mlp(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(TRAIN_SEED)
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:], strict=True)):
        params[f"w{i}"] = he(rng, (fan_out, fan_in), fan_in)
        params[f"b{i}"] = np.zeros(fan_out)
    optimizer = Adam(params, lr=2e-3)
    x_train, y_train = data["x_train"].astype(np.float64), data["y_train"]
    layers = len(MLP_SIZES) - 1
    for _epoch in range(60):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            logits, acts = mlp_forward(params, x_train[batch])
            _, grad = softmax_cross_entropy(logits, y_train[batch])
            grads = {}
            for i in reversed(range(layers)):
                grads[f"w{i}"] = grad.T @ acts[i] + 1e-4 * params[f"w{i}"]
                grads[f"b{i}"] = grad.sum(axis=0)
                grad = (grad @ params[f"w{i}"]) * (acts[i] > 0)
            optimizer.step(grads)
    return params


def export_mlp(params: dict[str, np.ndarray], path: Path) -> None:
    nodes, inits = [], []
    current = "input"
    layers = len(MLP_SIZES) - 1
    for i in range(layers):
        inits.append(numpy_helper.from_array(params[f"w{i}"].astype(np.float32), f"fc{i}.weight"))
        inits.append(numpy_helper.from_array(params[f"b{i}"].astype(np.float32), f"fc{i}.bias"))
        out = f"fc{i}"
        nodes.append(
            helper.make_node(
                "Gemm", [current, f"fc{i}.weight", f"fc{i}.bias"], [out], name=f"fc{i}", transB=1
            )
        )
        current = out
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [current], [f"relu{i}"], name=f"relu{i}"))
            current = f"relu{i}"
    nodes.append(helper.make_node("Softmax", [current], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    save_model(graph, path)


# -- CNN: conv3x3(8) relu maxpool2 conv3x3(16) relu flatten gemm(10) -----------------------------


def cnn_forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, dict]:
    batch = x.shape[0]
    cols1 = im2col(x, 3, 1)  # [N, 64, 9]
    z1 = cols1 @ params["c1.w"].reshape(8, -1).T + params["c1.b"]  # [N, 64, 8]
    a1 = np.maximum(z1, 0.0).transpose(0, 2, 1).reshape(batch, 8, 8, 8)
    windows = (
        a1.reshape(batch, 8, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(batch, 8, 4, 4, 4)
    )
    p1 = windows.max(axis=-1)
    winner = windows == p1[..., None]
    cols2 = im2col(p1, 3, 1)  # [N, 16, 72]
    z2 = cols2 @ params["c2.w"].reshape(16, -1).T + params["c2.b"]  # [N, 16, 16]
    a2 = np.maximum(z2, 0.0).transpose(0, 2, 1).reshape(batch, 16, 4, 4)
    flat = a2.reshape(batch, -1)
    logits = flat @ params["fc.w"].T + params["fc.b"]
    cache = {
        "cols1": cols1,
        "z1": z1,
        "winner": winner,
        "p1": p1,
        "cols2": cols2,
        "z2": z2,
        "flat": flat,
    }
    return logits, cache


def cnn_backward(
    params: dict[str, np.ndarray], cache: dict, grad: np.ndarray
) -> dict[str, np.ndarray]:
    batch = grad.shape[0]
    grads = {"fc.w": grad.T @ cache["flat"], "fc.b": grad.sum(axis=0)}
    d_flat = grad @ params["fc.w"]
    d_z2 = d_flat.reshape(batch, 16, 16).transpose(0, 2, 1) * (cache["z2"] > 0)  # [N, 16pos, 16ch]
    grads["c2.w"] = np.einsum("npc,npk->ck", d_z2, cache["cols2"]).reshape(params["c2.w"].shape)
    grads["c2.b"] = d_z2.sum(axis=(0, 1))
    d_cols2 = d_z2 @ params["c2.w"].reshape(16, -1)
    d_p1 = col2im(d_cols2, (batch, 8, 4, 4), 3, 1)
    # Max pool: the gradient goes to the (first) winning position of each window.
    winner = cache["winner"]
    first = np.cumsum(winner, axis=-1) == 1
    d_windows = (winner & first) * d_p1[..., None]
    d_a1 = (
        d_windows.reshape(batch, 8, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(batch, 8, 8, 8)
    )
    d_z1 = d_a1.reshape(batch, 8, 64).transpose(0, 2, 1) * (cache["z1"] > 0)
    grads["c1.w"] = np.einsum("npc,npk->ck", d_z1, cache["cols1"]).reshape(params["c1.w"].shape)
    grads["c1.b"] = d_z1.sum(axis=(0, 1))
    for key in ("c1.w", "c2.w", "fc.w"):
        grads[key] = grads[key] + 1e-4 * params[key]
    return grads


def train_cnn(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(TRAIN_SEED + 1)
    params = {
        "c1.w": he(rng, (8, 1, 3, 3), 9),
        "c1.b": np.zeros(8),
        "c2.w": he(rng, (16, 8, 3, 3), 72),
        "c2.b": np.zeros(16),
        "fc.w": he(rng, (10, 256), 256),
        "fc.b": np.zeros(10),
    }
    optimizer = Adam(params, lr=2e-3)
    x_train = data["x_train"].astype(np.float64).reshape(-1, 1, 8, 8)
    y_train = data["y_train"]
    for _epoch in range(30):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            logits, cache = cnn_forward(params, x_train[batch])
            _, grad = softmax_cross_entropy(logits, y_train[batch])
            optimizer.step(cnn_backward(params, cache, grad))
    return params


def export_cnn(params: dict[str, np.ndarray], path: Path) -> None:
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()]
    same = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    node = helper.make_node
    nodes = [
        node("Conv", ["input", "c1.w", "c1.b"], ["conv1"], name="conv1", **same),
        node("Relu", ["conv1"], ["relu1"], name="relu1"),
        node("MaxPool", ["relu1"], ["pool1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["pool1", "c2.w", "c2.b"], ["conv2"], name="conv2", **same),
        node("Relu", ["conv2"], ["relu2"], name="relu2"),
        node("Flatten", ["relu2"], ["flat"], name="flatten", axis=1),
        node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    save_model(graph, path)


def save_model(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.producer_name = "aicommons scripts/train_digits.py"
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main() -> None:
    data = load_split()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    mlp = train_mlp(data)
    mlp_acc = (
        mlp_forward(mlp, data["x_test"].astype(np.float64))[0].argmax(1) == data["y_test"]
    ).mean()
    export_mlp(mlp, DEMO_DIR / "digits_mlp.onnx")
    cnn = train_cnn(data)
    cnn_logits = cnn_forward(cnn, data["x_test"].astype(np.float64).reshape(-1, 1, 8, 8))[0]
    cnn_acc = (cnn_logits.argmax(1) == data["y_test"]).mean()
    export_cnn(cnn, DEMO_DIR / "digits_cnn.onnx")
    np.savez_compressed(
        DEMO_DIR / "digits.npz",
        x_test=data["x_test"],
        y_test=data["y_test"],
        x_calib=data["x_calib"],
    )
    print(f"digits MLP held-out accuracy {mlp_acc:.4f}, CNN {cnn_acc:.4f}; wrote {DEMO_DIR}")


if __name__ == "__main__":
    main()
