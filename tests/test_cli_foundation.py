"""The `aic` entry point: it installs as a console script, reports its version and helps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import aicommons
from aicommons.cli import app

runner = CliRunner()


def test_version_matches_package_metadata() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"aic {aicommons.__version__}"
    assert aicommons.__version__ != "0.0.0+unknown"


def test_help_lists_main_job() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "up" in result.stdout


def test_console_script_is_installed() -> None:
    aic = shutil.which("aic", path=str(Path(sys.executable).parent))
    assert aic is not None, "the aic console script is not installed next to this Python"
    completed = subprocess.run([aic, "--version"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0
    assert completed.stdout.startswith("aic ")


def test_unknown_command_fails() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code != 0
