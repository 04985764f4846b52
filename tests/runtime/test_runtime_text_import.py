"""Checkpoint import and text use on a tiny random BERT: exactness of the built graph, the CLI
(`aic model quantize DIR --calib-text`, `embed`, `run --text`) and every bad input as one line
with no partial package."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bert_fixtures import TINY_TEXTS, write_tiny_checkpoint
from test_runtime_cli import assert_one_line_error, invoke

from aicommons.demo import DIGITS_DATA, DIGITS_MLP
from aicommons.runtime.bert import float_forward, load_checkpoint
from aicommons.runtime.bert_import import quantize_checkpoint
from aicommons.runtime.errors import CalibrationError, CheckpointError, InputError
from aicommons.runtime.package import ModelPackage
from aicommons.runtime.quantize import quantize_onnx
from aicommons.runtime.text import TextModel, check_texts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    checkpoint = write_tiny_checkpoint(root / "ckpt")
    calib = root / "calib.txt"
    calib.write_text("\n".join(TINY_TEXTS) + "\n", encoding="utf-8")
    package = quantize_checkpoint(checkpoint, TINY_TEXTS)
    package.save(root / "tiny.aicm")
    return {"root": root, "ckpt": checkpoint, "calib": calib, "pkg": root / "tiny.aicm"}


@pytest.fixture(scope="module")
def tiny_package(tiny) -> ModelPackage:
    from aicommons.runtime import load_package

    return load_package(tiny["pkg"])


def test_imported_graph_runs_exactly_and_close_to_the_float_model(tiny, tiny_package) -> None:
    model = TextModel(tiny_package)
    texts = [*TINY_TEXTS, "the dog sat"]
    result = model.embed(texts)
    assert result.values.dtype == np.int32 and result.vectors.dtype == np.float32
    # Every layer the importer builds runs as the pure-int reference says.
    np.testing.assert_array_equal(tiny_package.run_reference(result.ids[:3]), result.values[:3])
    checkpoint = load_checkpoint(tiny["ckpt"])
    encoded = model.encode(texts)
    floats = float_forward(checkpoint, encoded.ids, encoded.mask)
    cos = (floats * result.vectors).sum(axis=1)
    assert cos.min() > 0.999
    norms = np.linalg.norm(result.vectors, axis=1)
    assert np.all(np.abs(norms - 1) < 1e-3)


def test_package_length_follows_the_tokenizer_and_can_be_chosen(tiny, tiny_package) -> None:
    # tokenizer.json truncates at 16 (sentence_bert_config says 32): the package runs 16.
    assert tiny_package.input_shape == (16,)
    longer = quantize_checkpoint(tiny["ckpt"], TINY_TEXTS[:3], max_length=32)
    assert longer.input_shape == (32,)
    with pytest.raises(CheckpointError, match="max length 64 outside"):
        quantize_checkpoint(tiny["ckpt"], TINY_TEXTS[:3], max_length=64)


def test_cli_quantize_embed_and_run_text(monkeypatch, capsys, tiny, tmp_path) -> None:
    out = tmp_path / "t.aicm"
    code, stdout, _ = invoke(
        monkeypatch, capsys, "model", "quantize", str(tiny["ckpt"]),
        "--calib-text", str(tiny["calib"]), "-o", str(out),
    )  # fmt: skip
    assert code == 0 and out.is_file()
    version = stdout.strip()
    long_text = "the cat sat on the mat " * 5
    code, stdout, err = invoke(
        monkeypatch, capsys, "model", "embed", str(out), "--text", "the cat",
        "--text", long_text, "--json", "-o", str(tmp_path / "e.npy"),
    )  # fmt: skip
    assert code == 0
    payload = json.loads(stdout)
    assert payload["version_id"] == version and payload["truncated"] == [1]
    assert "note: text 1 has 32 tokens; truncated to the first 16" in err
    saved = np.load(tmp_path / "e.npy")
    assert saved.shape == (2, 32) and saved.dtype == np.float32
    np.testing.assert_array_equal(saved, np.array(payload["embeddings"], dtype=np.float32))
    lines = tmp_path / "texts.txt"
    lines.write_text("the cat\r\n" + long_text + "\n", encoding="utf-8")
    code, stdout, _ = invoke(
        monkeypatch, capsys, "model", "run", str(out), "--text-file", str(lines), "--json"
    )
    assert code == 0
    assert json.loads(stdout)["embeddings"] == payload["embeddings"]
    code, stdout, _ = invoke(monkeypatch, capsys, "model", "run", str(out), "--text", "the cat")
    assert code == 0 and "embeddings  1 x 32" in stdout
    code, stdout, _ = invoke(monkeypatch, capsys, "model", "inspect", str(out))
    assert code == 0 and "ids [16] int32" in stdout and "16 tokens a text" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--text", ""], "text 0 is empty"),
        (["--text", "ok", "--text", "   "], "text 1 is empty"),
        (["--text", "[CLS] [SEP]"], None),
        ([], "give the texts with --text TEXT"),
    ],
)
def test_cli_embed_refuses_bad_text(monkeypatch, capsys, tiny, argv, message) -> None:
    code, _, err = invoke(monkeypatch, capsys, "model", "embed", str(tiny["pkg"]), *argv)
    if message is None:  # special-token text is ordinary text to the tokenizer's normaliser
        assert code == 0
        return
    assert_one_line_error(code, err, message)


def test_non_utf8_text_is_refused(monkeypatch, capsys, tiny, tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat\nthe \xff dog\n")
    code, _, err = invoke(
        monkeypatch, capsys, "model", "embed", str(tiny["pkg"]), "--text-file", str(bad),
        "-o", str(tmp_path / "out.npy"),
    )  # fmt: skip
    assert_one_line_error(code, err, "is not valid UTF-8 (byte 0xff on line 2)")
    assert not (tmp_path / "out.npy").exists()
    # Undecodable command-line bytes reach Python as lone surrogates.
    with pytest.raises(InputError, match="text 1 is not valid UTF-8"):
        check_texts(["fine", "bad \udcff byte"])
    with pytest.raises(InputError, match="not a string"):
        check_texts(["fine", b"bytes"])  # type: ignore[list-item]


def test_embed_refuses_a_package_that_is_not_a_text_model(monkeypatch, capsys, tmp_path) -> None:
    package = quantize_onnx(DIGITS_MLP, np.load(DIGITS_DATA)["x_calib"])
    package.save(tmp_path / "mlp.aicm")
    code, _, err = invoke(
        monkeypatch, capsys, "model", "embed", str(tmp_path / "mlp.aicm"), "--text", "hi"
    )
    assert_one_line_error(code, err, "not a text model")


def _broken(tiny: dict[str, Path], tmp_path: Path, change) -> Path:  # noqa: ANN001
    directory = tmp_path / "ckpt"
    shutil.copytree(tiny["ckpt"], directory)
    change(directory)
    return directory


def _set_json(path: Path, **fields) -> None:  # noqa: ANN003
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


BROKEN = {
    "missing config": (
        lambda d: (d / "config.json").unlink(),
        "checkpoint is missing config.json",
    ),
    "missing weights": (
        lambda d: (d / "model.safetensors").unlink(),
        "checkpoint is missing model.safetensors",
    ),
    "missing tokenizer": (
        lambda d: (d / "tokenizer.json").unlink(),
        "checkpoint is missing tokenizer.json",
    ),
    "missing pooling": (
        lambda d: shutil.rmtree(d / "1_Pooling"),
        "checkpoint is missing the pooling config",
    ),
    "config of another size": (
        lambda d: _set_json(d / "config.json", intermediate_size=128),
        "config.json implies [",
    ),
    "pooling of another width": (
        lambda d: _set_json(d / "config.json", hidden_size=48, num_attention_heads=4),
        "pooling word_embedding_dimension 32 != hidden_size 48",
    ),
    "config vocabulary differs from the weights": (
        lambda d: _set_json(d / "config.json", vocab_size=20),
        "model.safetensors tensor 'embeddings.word_embeddings.weight' has shape",
    ),
    "cls pooling": (
        lambda d: _set_json(
            d / "1_Pooling" / "config.json",
            pooling_mode_mean_tokens=False,
            pooling_mode_cls_token=True,
        ),
        "pooling ['pooling_mode_cls_token'] is not supported",
    ),
    "corrupt weights": (
        lambda d: (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{"),
        "cannot read",
    ),
    "not bert": (lambda d: _set_json(d / "config.json", model_type="gpt2"), "is not supported"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_bad_checkpoint_is_one_line_and_leaves_no_package(
    monkeypatch, capsys, tiny, tmp_path, case
) -> None:
    change, message = BROKEN[case]
    directory = _broken(tiny, tmp_path, change)
    out = tmp_path / "out.aicm"
    code, _, err = invoke(
        monkeypatch, capsys, "model", "quantize", str(directory),
        "--calib-text", str(tiny["calib"]), "-o", str(out),
    )  # fmt: skip
    assert_one_line_error(code, err, message)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_tokenizer_larger_than_the_embedding_table_is_refused(tiny, tmp_path) -> None:
    from bert_fixtures import vocab_size

    def shrink(directory: Path) -> None:
        from safetensors.numpy import load_file, save_file

        weights = load_file(str(directory / "model.safetensors"))
        name = "embeddings.word_embeddings.weight"
        weights[name] = weights[name][: vocab_size() - 5]
        save_file(weights, str(directory / "model.safetensors"))
        _set_json(directory / "config.json", vocab_size=vocab_size() - 5)

    directory = _broken(tiny, tmp_path, shrink)
    with pytest.raises(CheckpointError, match="tokenizer.json has .* tokens but config.json"):
        quantize_checkpoint(directory, TINY_TEXTS)


def test_calibration_texts_are_checked(monkeypatch, capsys, tiny, tmp_path) -> None:
    with pytest.raises(CalibrationError, match="calibration texts: no text given"):
        quantize_checkpoint(tiny["ckpt"], [])
    empty_line = tmp_path / "calib.txt"
    empty_line.write_text("the cat\n\nthe dog\n", encoding="utf-8")
    out = tmp_path / "o.aicm"
    code, _, err = invoke(
        monkeypatch, capsys, "model", "quantize", str(tiny["ckpt"]),
        "--calib-text", str(empty_line), "-o", str(out),
    )  # fmt: skip
    assert_one_line_error(code, err, "line 2 is empty")
    code, _, err = invoke(
        monkeypatch, capsys, "model", "quantize", str(tiny["ckpt"]),
        "--calib", str(empty_line), "-o", str(out),
    )  # fmt: skip
    assert_one_line_error(code, err, "calibrated with texts: pass --calib-text FILE")
    assert not out.exists()
