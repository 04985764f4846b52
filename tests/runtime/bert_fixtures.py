"""A tiny random BERT sentence-embedding checkpoint in the sentence-transformers layout.

Same files as all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer.json with a
WordPiece vocabulary, modules.json, 1_Pooling/config.json, sentence_bert_config.json), sizes
small enough that importing it takes a second: the import, CLI and bad-input tests use it; the
fidelity tests use the real checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

WORDS = " ".join(
    (
        "the a cat dog sat on mat ran fast slow big small red blue green house car tree bird fish",
        "water fire sun moon star day night good bad happy sad new old hot cold up down left",
        "right market model chain token weight",
    )
).split(" ")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PIECES = ["##s", "##ed", "##ing", "##er", "##ly", ".", ",", "!", "?"]
HIDDEN, HEADS, FFN, LAYERS, POSITIONS = 32, 4, 64, 2, 64


def tokenizer_json(max_length: int = 16) -> str:
    """A BERT WordPiece tokenizer (lowercasing) over WORDS, truncating at `max_length`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS + PIECES)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer.to_str()


def vocab_size() -> int:
    return len(SPECIALS) + len(WORDS) + len(PIECES)


def write_tiny_checkpoint(directory: Path, seed: int = 0, max_length: int = 16) -> Path:
    """Write the checkpoint files into `directory` (created) and return it."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = vocab_size()
    config = {
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": HIDDEN,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "intermediate_size": FFN,
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
        "vocab_size": vocab,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    }
    (directory / "config.json").write_text(json.dumps(config))

    def normal(*shape: int, scale: float = 0.2) -> np.ndarray:
        return rng.normal(0, scale, shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": normal(vocab, HIDDEN, scale=0.5),
        "embeddings.position_embeddings.weight": normal(POSITIONS, HIDDEN, scale=0.1),
        "embeddings.token_type_embeddings.weight": normal(2, HIDDEN, scale=0.1),
        "embeddings.LayerNorm.weight": 1 + normal(HIDDEN, scale=0.1),
        "embeddings.LayerNorm.bias": normal(HIDDEN, scale=0.05),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            weights[f"{p}attention.self.{name}.weight"] = normal(HIDDEN, HIDDEN)
            weights[f"{p}attention.self.{name}.bias"] = normal(HIDDEN, scale=0.05)
        weights[f"{p}attention.output.dense.weight"] = normal(HIDDEN, HIDDEN)
        weights[f"{p}attention.output.dense.bias"] = normal(HIDDEN, scale=0.05)
        weights[f"{p}intermediate.dense.weight"] = normal(FFN, HIDDEN)
        weights[f"{p}intermediate.dense.bias"] = normal(FFN, scale=0.05)
        weights[f"{p}output.dense.weight"] = normal(HIDDEN, FFN, scale=0.1)
        weights[f"{p}output.dense.bias"] = normal(HIDDEN, scale=0.05)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}{norm}.weight"] = 1 + normal(HIDDEN, scale=0.1)
            weights[f"{p}{norm}.bias"] = normal(HIDDEN, scale=0.05)
    save_file(weights, str(directory / "model.safetensors"))
    (directory / "tokenizer.json").write_text(tokenizer_json(max_length))
    kinds = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(kinds)
    ]
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": HIDDEN, "pooling_mode_mean_tokens": True,
               "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False}  # fmt: skip
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 32, "do_lower_case": False})
    )
    return directory


TINY_TEXTS = [
    "The cat sat on the mat.",
    "A big red car ran fast!",
    "Good day, happy sun.",
    "The old bird sang slowly at night",
    "Blue water, cold fish.",
    "Market model chain token weight",
    "the dog ran down the left road",
    "small green tree near the house",
]
