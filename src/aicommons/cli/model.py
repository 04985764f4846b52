"""`aic model ...`: quantise an ONNX model into a package, run it, inspect it.

Thin wrappers over aicommons.runtime; errors surface as one-line messages, and every file this
writes is written atomically (nothing half-written on failure).
"""

from __future__ import annotations

from pathlib import Path

import typer

from aicommons.cli._common import print_json

model_app = typer.Typer(
    help="Deterministic integer models: quantise, run, inspect.", no_args_is_help=True
)


@model_app.command("quantize")
def quantize_command(
    model: Path = typer.Argument(
        ...,
        help="Float ONNX model (opset 13-21), or a sentence-transformers / BERT checkpoint "
        "directory (config.json, model.safetensors, tokenizer.json, pooling config).",
    ),
    calib: Path | None = typer.Option(
        None,
        "--calib",
        help="Calibration inputs [N, ...] for an ONNX model (.npy, or .npz with 'x_calib').",
        show_default=False,
    ),
    calib_text: Path | None = typer.Option(
        None,
        "--calib-text",
        help="Calibration texts for a checkpoint directory (UTF-8, one text a line).",
        show_default=False,
    ),
    max_length: int | None = typer.Option(
        None,
        "--max-length",
        min=3,
        help="Tokens a text (checkpoints only; default: the tokenizer's own, at most 128).",
        show_default=False,
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Package file to write (.aicm)."),
) -> None:
    """Quantise MODEL with calibration data into an integer package; print its version id (and,
    on stderr, a note for each thing the import dropped or folded, such as a label branch)."""
    from aicommons.runtime.errors import CalibrationError
    from aicommons.runtime.files import check_output_path, load_array

    if model.is_dir():
        from aicommons.runtime.bert_import import quantize_checkpoint
        from aicommons.runtime.text import read_text_lines

        if calib is not None or calib_text is None:
            raise CalibrationError(
                "a checkpoint directory is calibrated with texts: pass --calib-text FILE"
            )
        check_output_path(output, {"calibration file": calib_text})
        texts = read_text_lines(calib_text)
        package = quantize_checkpoint(model, texts, max_length=max_length)
    else:
        from aicommons.runtime.quantize import quantize_onnx

        if calib_text is not None or max_length is not None:
            raise CalibrationError(
                "--calib-text and --max-length are for checkpoint directories; "
                "an ONNX model takes --calib X.npy"
            )
        if calib is None:
            raise CalibrationError("calibration data is required: pass --calib X.npy")
        check_output_path(output, {"source model": model, "calibration file": calib})
        calibration = load_array(calib, "calibration", npz_key="x_calib")
        package = quantize_onnx(model, calibration)
    package.save(output)
    for note in package.manifest["metadata"].get("import_notes", []):
        typer.echo(f"note: {note}", err=True)
    typer.echo("0x" + package.version_id.hex())


def _texts(text: list[str] | None, text_file: Path | None) -> list[str]:
    """The texts of --text (repeatable) or --text-file (exactly one of them)."""
    from aicommons.runtime.errors import InputError
    from aicommons.runtime.text import read_text_lines

    if bool(text) == (text_file is not None):
        raise InputError("give the texts with --text TEXT (repeatable) or --text-file FILE")
    return list(text) if text else read_text_lines(text_file)


def _embed_and_print(
    package_path: Path, texts: list[str], output: Path | None, as_json: bool
) -> None:
    """Embed `texts` with the text package, report truncations on stderr, print or save."""
    from aicommons.runtime import load_package
    from aicommons.runtime.files import save_array
    from aicommons.runtime.text import TextModel

    result = TextModel(load_package(package_path)).embed(texts)
    for cut in result.truncated:
        typer.echo(
            f"note: text {cut.index} has {cut.tokens} tokens; truncated to the first {cut.kept}",
            err=True,
        )
    if output is not None:
        save_array(output, result.vectors)
    version = "0x" + result.version_id.hex()
    if as_json:
        print_json(
            {
                "version_id": version,
                "embeddings": [[float(v) for v in row] for row in result.vectors],
                "truncated": [cut.index for cut in result.truncated],
            }
        )
        return
    typer.echo(f"version id  {version}")
    typer.echo(f"embeddings  {result.vectors.shape[0]} x {result.vectors.shape[1]} (float32)")
    for index, row in enumerate(result.vectors[:10]):
        head = ", ".join(f"{v:+.4f}" for v in row[:4])
        typer.echo(f"  text {index}: [{head}, ...]")
    if output is not None:
        typer.echo(f"wrote       {output}")


TEXT_OPTION = typer.Option(
    None, "--text", help="A text to embed (repeat for several).", show_default=False
)
TEXT_FILE_OPTION = typer.Option(
    None, "--text-file", help="Texts to embed, UTF-8, one a line.", show_default=False
)


@model_app.command("embed")
def embed_command(
    package_path: Path = typer.Argument(..., metavar="PKG", help="Text model package (.aicm)."),
    text: list[str] | None = TEXT_OPTION,
    text_file: Path | None = TEXT_FILE_OPTION,
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the embeddings as float32 [N, D] (.npy)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help='Print {"version_id", "embeddings", "truncated"} as JSON.'
    ),
) -> None:
    """Embed texts with a text model package (tokenised by the tokenizer it commits, run by the
    exact integer runtime); one row per text. Texts longer than the package's length are cut
    (a note on stderr says which); empty or non-UTF-8 texts are refused."""
    from aicommons.runtime.files import check_output_path

    sources = {"model package": package_path}
    if text_file is not None:
        sources["text file"] = text_file
    if output is not None:
        check_output_path(output, sources)
    _embed_and_print(package_path, _texts(text, text_file), output, as_json)


@model_app.command("run")
def run_command(
    package_path: Path = typer.Argument(..., metavar="PKG", help="Model package (.aicm)."),
    input_path: Path | None = typer.Option(
        None,
        "--input",
        help="Inputs [N, ...] (.npy, .npz or .json): integers are the int8 values themselves "
        "(each in [-128, 127]), floats are quantised.",
        show_default=False,
    ),
    text: list[str] | None = TEXT_OPTION,
    text_file: Path | None = TEXT_FILE_OPTION,
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write dequantised float32 outputs (.npy)."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print {"version_id", "argmax"} as JSON (text models: as `aic model embed`).',
    ),
) -> None:
    """Run PKG on a batch of inputs with the exact integer runtime (computes everything, then
    writes -o atomically, so a failure leaves no file). A text model takes --text / --text-file
    instead of --input and prints what `aic model embed` prints."""
    from aicommons.runtime import load_package
    from aicommons.runtime.errors import InputError
    from aicommons.runtime.files import check_output_path, load_input, save_array

    if input_path is None:
        if not text and text_file is None:
            raise InputError("give --input FILE (or --text / --text-file for a text model)")
        sources = {"model package": package_path}
        if text_file is not None:
            sources["text file"] = text_file
        if output is not None:
            check_output_path(output, sources)
        _embed_and_print(package_path, _texts(text, text_file), output, as_json)
        return
    if text or text_file is not None:
        raise InputError("give either --input or --text / --text-file, not both")
    if output is not None:
        check_output_path(output, {"model package": package_path, "input": input_path})
    package = load_package(package_path)
    y = package.run(package.prepare_input(load_input(input_path)))
    argmax = [int(v) for v in y.reshape(y.shape[0], -1).argmax(axis=1)]
    if output is not None:
        save_array(output, package.dequantize_output(y))
    version = "0x" + package.version_id.hex()
    if as_json:
        print_json({"version_id": version, "argmax": argmax})
        return
    typer.echo(f"version id  {version}")
    typer.echo(f"argmax      {argmax}")
    if output is not None:
        typer.echo(f"wrote       {output}")


@model_app.command("inspect")
def inspect_command(
    package_path: Path = typer.Argument(..., metavar="PKG", help="Model package (.aicm)."),
    as_json: bool = typer.Option(False, "--json", help="Print everything as JSON."),
) -> None:
    """Show a package's version id, ops, parameter count, MACs per sample and tensor roots."""
    from aicommons.runtime import load_package
    from aicommons.runtime.files import describe

    info = describe(load_package(package_path))
    if as_json:
        print_json(info)
        return
    typer.echo(f"version id      {info['version_id']}")
    typer.echo(f"weights root    {info['weights_root']}")
    dtype = info["input"].get("dtype", "int8")
    typer.echo(f"input           {info['input']['name']} {info['input']['shape']} {dtype}")
    text = info["metadata"].get("text")
    if isinstance(text, dict):
        typer.echo(f"text model      tokenizer committed, {text.get('max_length')} tokens a text")
    typer.echo(f"parameters      {info['parameter_count']}")
    typer.echo(f"MACs / sample   {info['macs_per_sample']}")
    typer.echo("layers:")
    for layer in info["layers"]:
        typer.echo(
            f"  {layer['name']:<20} {layer['op']:<8} -> {layer['out_dtype']}{layer['out_shape']}"
        )
    typer.echo("tensors:")
    for tensor in info["tensors"]:
        typer.echo(
            f"  {tensor['name']:<28} {tensor['dtype']:<5} {tensor['shape']!s:<16} {tensor['root']}"
        )
