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
    model: Path = typer.Argument(..., help="Float ONNX model (opset 13-21)."),
    calib: Path | None = typer.Option(
        None,
        "--calib",
        help="Calibration inputs [N, ...] (.npy, or .npz with 'x_calib').",
        show_default=False,
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Package file to write (.aicm)."),
) -> None:
    """Quantise MODEL with calibration data into an integer package; print its version id (and,
    on stderr, a note for each thing the import dropped or folded, such as a label branch)."""
    from aicommons.runtime.errors import CalibrationError
    from aicommons.runtime.files import check_output_path, load_array
    from aicommons.runtime.quantize import quantize_onnx

    if calib is None:
        raise CalibrationError("calibration data is required: pass --calib X.npy")
    check_output_path(output, {"source model": model, "calibration file": calib})
    calibration = load_array(calib, "calibration", npz_key="x_calib")
    package = quantize_onnx(model, calibration)
    package.save(output)
    for note in package.manifest["metadata"].get("import_notes", []):
        typer.echo(f"note: {note}", err=True)
    typer.echo("0x" + package.version_id.hex())


@model_app.command("run")
def run_command(
    package_path: Path = typer.Argument(..., metavar="PKG", help="Model package (.aicm)."),
    input_path: Path = typer.Option(
        ...,
        "--input",
        help="Inputs [N, ...] (.npy, .npz or .json): integers are the int8 values themselves "
        "(each in [-128, 127]), floats are quantised.",
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write dequantised float32 outputs (.npy)."
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"version_id", "argmax"} as JSON.'),
) -> None:
    """Run PKG on a batch of inputs with the exact integer runtime (computes everything, then
    writes -o atomically, so a failure leaves no file)."""
    from aicommons.runtime import load_package
    from aicommons.runtime.files import check_output_path, load_input, save_array

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
    typer.echo(f"input           {info['input']['name']} {info['input']['shape']} int8")
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
