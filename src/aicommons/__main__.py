"""`python -m aicommons ...` is the same as the `aic` command (used to start child processes)."""

from aicommons.cli import main

main()
