"""Shipped demo models: digits MLP and CNN (float ONNX) plus held-out and calibration data.

Files only, made by scripts/train_digits.py; nothing here may need scikit-learn or a download.
`digits.npz` holds x_test [360, 64] and x_calib [256, 64] (pixels / 16, float32) and y_test.
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
DIGITS_MLP = DEMO_DIR / "digits_mlp.onnx"
DIGITS_CNN = DEMO_DIR / "digits_cnn.onnx"
DIGITS_DATA = DEMO_DIR / "digits.npz"
