"""Record real exporter output once: small models as torch and skl2onnx write them by default.

A dev script, run in a scratch venv (never a runtime or test dependency):

    python3 -m venv /tmp/exporters
    /tmp/exporters/bin/pip install torch==2.13.0 onnx onnxscript skl2onnx scikit-learn \
        numpy onnxruntime
    /tmp/exporters/bin/python scripts/record_exporter_models.py

It trains tiny models on scikit-learn's bundled 8x8 digits (fixed split and seeds), exports each
with the exporter's default options, and writes to tests/data/exporters/: the .onnx files (the
torch dynamo export with its external data file), the calibration and test inputs, and
onnxruntime's float class scores on both (`<model>.ort_calib.npy`, `<model>.ort_test.npy`),
which the tests compare the quantised packages against. It never edits a graph the exporter
wrote. Re-running it reproduces the same weights and scores (fixed seeds, CPU); the .onnx
bytes may differ in metadata only (torch records the script's line numbers in each node,
skl2onnx lists opset imports in varying order), so the committed files are the record.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "exporters"
SPLIT_SEED = 20260101
CALIB_SIZE = 128
TEST_SIZE = 200


def load_split() -> dict[str, np.ndarray]:
    """Pixels scaled from 0..16 to [0, 1], fixed permutation into train / test / calibration."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    calib = train[:CALIB_SIZE]
    return {
        "x_train": x[train],
        "y_train": y[train],
        "x_test": x[test],
        "y_test": y[test],
        "x_calib": x[calib],
    }


def torch_cnn(data: dict[str, np.ndarray]):
    """conv 1->8 3x3 + ReLU, maxpool 2, conv 8->4 3x3 + ReLU, view(-1, 64), linear 64->10."""
    import torch
    from torch import nn

    torch.manual_seed(7)

    class SmallCnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.relu(self.conv2(x))
            return self.fc(x.view(-1, 64))

    model = SmallCnn()
    x = torch.from_numpy(data["x_train"].reshape(-1, 1, 8, 8))
    y = torch.from_numpy(data["y_train"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return model.eval()


def export_torch(data: dict[str, np.ndarray]) -> list[str]:
    import torch

    model = torch_cnn(data)
    sample = torch.from_numpy(data["x_test"][:2].reshape(-1, 1, 8, 8))
    batch = torch.export.Dim("batch", min=1, max=1024)
    # The default exporter (dynamo), a dynamic batch, weights in an external data file.
    torch.onnx.export(
        model,
        (sample,),
        str(OUT / "torch_cnn.onnx"),
        input_names=["x"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: batch}},
        external_data=True,
    )
    # The same with every default: a static batch-1 graph (Reshape to [1, 64]).
    torch.onnx.export(model, (sample[:1],), str(OUT / "torch_cnn_batch1.onnx"))
    return ["torch_cnn", "torch_cnn_batch1"]


def export_sklearn(data: dict[str, np.ndarray]) -> list[str]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = data["x_train"], data["y_train"]
    models = {
        "sklearn_mlp": MLPClassifier((32,), max_iter=1000, random_state=0),
        "sklearn_pipeline": Pipeline(
            [
                ("scale", StandardScaler()),
                ("mlp", MLPClassifier((32,), max_iter=1000, random_state=0)),
            ]
        ),
        "sklearn_linear": LogisticRegression(max_iter=500),
    }
    for name, model in models.items():
        model.fit(x, y)
        onnx_model = to_onnx(model, x[:1])  # skl2onnx's defaults
        (OUT / f"{name}.onnx").write_bytes(onnx_model.SerializeToString())
    return list(models)


def ort_scores(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's float class scores: torch's logits, or skl2onnx's probabilities (which
    reach the caller through a ZipMap, one dict a row)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    x = x.reshape(-1, 1, 8, 8) if feed.shape[1:] == [1, 8, 8] else x
    if feed.shape[0] == 1:
        rows = [session.run(None, {feed.name: x[i : i + 1]}) for i in range(len(x))]
        outputs = [sum((list(part) for part in parts), []) for parts in zip(*rows, strict=True)]
    else:
        outputs = session.run(None, {feed.name: x})
    scores = outputs[-1]
    if isinstance(scores[0], dict):
        scores = [[row[k] for k in sorted(row)] for row in scores]
    return np.asarray(scores, dtype=np.float32)


def _op_name(node) -> str:
    return f"{node.domain}:{node.op_type}" if node.domain else node.op_type


def _input_dims(model) -> list:
    return list(model.graph.input[0].type.tensor_type.shape.dim)


def record_outputs(names: list[str], data: dict[str, np.ndarray]) -> dict[str, object]:
    """onnxruntime's class scores on the calibration and test sets, and a summary for review."""
    import onnx

    summary: dict[str, object] = {}
    for name in names:
        path = OUT / f"{name}.onnx"
        for split in ("calib", "test"):
            np.save(OUT / f"{name}.ort_{split}.npy", ort_scores(path, data[f"x_{split}"]))
        scores = np.load(OUT / f"{name}.ort_test.npy")
        model = onnx.load(str(path), load_external_data=False)
        summary[name] = {
            "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
            "ops": sorted({_op_name(node) for node in model.graph.node}),
            "input": [d.dim_value or d.dim_param for d in _input_dims(model)],
            "top1_vs_labels": float((scores.argmax(axis=1) == data["y_test"]).mean()),
        }
    return summary


def main() -> None:
    import onnx
    import skl2onnx
    import sklearn
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    data = load_split()
    np.save(OUT / "digits_calib.npy", data["x_calib"])
    np.save(OUT / "digits_test.npy", data["x_test"])
    np.save(OUT / "digits_test_labels.npy", data["y_test"])
    (OUT / "empty.onnx").write_bytes(b"")
    names = export_torch(data) + export_sklearn(data)
    summary = record_outputs(names, data)
    summary["versions"] = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "skl2onnx": skl2onnx.__version__,
        "scikit-learn": sklearn.__version__,
    }
    (OUT / "RECORDED.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
