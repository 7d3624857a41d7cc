"""The `lantern` command line: parses arguments, calls a stage, prints. No logic lives here.

Each command group is a module in `lantern/commands/` with a `register(app)` function, so a
feature adds its commands without touching the others. Every LanternError becomes one line on
stderr (`error: ...`) and exit status 1; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from lantern import __version__
from lantern.commands import common
from lantern.errors import LanternError

app = typer.Typer(
    name="lantern",
    help="Lantern: a local, grounded assistant. Answers from your documents and verifies every claim.\n\n"
    "Start with `lantern doctor`, then `lantern ingest kb/` and `lantern ask \"...\"`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lantern {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    home: str = typer.Option(None, "--home", help="LANTERN_HOME for this run (KB, config.toml, logs)."),
    set_: list[str] = typer.Option(None, "--set", help="Override any setting for this run: --set NAME=VALUE (repeatable)."),
) -> None:
    """Global options, applied before any command."""
    common.GLOBAL_FLAGS.update(common.parse_set_flags(set_ or []))
    if home:
        common.GLOBAL_FLAGS["home"] = home
    common.start_logging()


def _register_all() -> None:
    from lantern.commands import ask, chat, config, doctor, knowledge, model, pending, serve, tools, verifier
    from lantern.commands import eval as eval_command

    for module in (ask, chat, knowledge, model, pending, serve, tools, eval_command, doctor, config, verifier):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    # Offline-first: nothing talks to the model hub unless a download was explicitly asked for.
    if os.environ.get("LANTERN_ALLOW_DOWNLOADS", "").lower() not in ("1", "true", "yes"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("LANCE_LOG", "error")
    _register_all()
    try:
        # Outside standalone mode click returns a command's `typer.Exit(code)` instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except LanternError as exc:
        common.error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        common.error("interrupted.")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        # Usage errors (typer's vendored click) carry their own short message and exit code.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        log = _log_crash(exc)
        common.error(f"internal error ({exc.__class__.__name__}: {exc}); traceback in {log}; please report it.")
        sys.exit(1)


def _log_crash(exc: BaseException) -> str:
    """Write the traceback of an unexpected failure to LANTERN_HOME/logs and return the file's path."""
    import tempfile
    import time
    import traceback
    from pathlib import Path

    from lantern.settings import default_home

    home = Path(common.GLOBAL_FLAGS.get("home") or default_home())
    text = "".join(traceback.format_exception(exc))
    for folder in (home / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}.log"
            path.write_text(text)
            return str(path)
        except OSError:
            continue
    return "(could not write a log)"
