"""`python -m aicommons.explorer --rpc URL [--host H] [--port P] [--node URL ...]`: the process
`aic up` starts; `aic explorer` is the same with the CLI's defaults."""

from aicommons.cli.explorer import explorer_command, run_standalone

if __name__ == "__main__":
    run_standalone(explorer_command)
