"""The typer app: parse, call one library function, print.

Only this package imports typer. ``run`` maps every error to a one-line
message on stderr and a documented exit code; no traceback reaches the user.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from secretstore import __version__
from secretstore.console import (
    PROG,
    disable_core_dumps,
    error_line,
    report_internal_error,
    silence_stdout,
)
from secretstore.errors import EXIT_FAILURE, EXIT_USAGE, SecretStoreError

app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, '\b' blocks kept as written
    name=PROG,
    help=(
        "A local, offline-first secret store. Secrets live sealed with libsodium in "
        "per-scope files (team, cluster, project) and reach programs through "
        "'secretstore exec -- CMD'. Precedence: project > cluster > team."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

secrets_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, '\b' blocks kept as written
    help="Gradient-compatible spelling: 'secretstore secrets set|list|get|delete ...'.",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None, "--store", metavar="DIR", help="Store directory (default: $SECRETSTORE_DIR, then the user data dir)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = {"store": store}


def _click_exception_types() -> tuple[type[BaseException], type[BaseException]]:
    """typer's ClickException and Abort, whether typer vendors click or depends on it."""
    mro = typer.BadParameter.__mro__
    click_exception = next(cls for cls in mro if cls.__name__ == "ClickException")
    return click_exception, typer.Abort


COMMAND_MODULES = ("secrets", "exec", "formats", "identity", "recipients", "git", "trust", "ui")


def _register_commands() -> None:
    """Import each command module: importing one registers its commands on ``app``."""
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(f"secretstore.cli.{module}")


_register_commands()


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code; never raise."""
    disable_core_dumps()
    click_exception, abort = _click_exception_types()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name=PROG, standalone_mode=False)
    except SecretStoreError as exc:
        error_line(exc.message, exc.hint)
        return exc.exit_code
    except click_exception as exc:
        code = getattr(exc, "exit_code", EXIT_USAGE)
        message = exc.format_message()  # type: ignore[attr-defined]
        if message:  # empty when click already printed the help (no arguments)
            error_line(message, "run 'secretstore --help' or 'secretstore COMMAND --help'")
        return int(code) if code else EXIT_USAGE
    except (abort, KeyboardInterrupt, EOFError):
        error_line("interrupted")
        return 130
    except BrokenPipeError:
        silence_stdout()
        return EXIT_FAILURE
    except typer.Exit as exc:
        return int(exc.exit_code)
    except OSError as exc:  # e.g. printing to a full disk: one line, not "internal error"
        error_line(f"cannot write output: {exc.strerror or exc}")
        return EXIT_FAILURE
    except Exception as exc:  # a bug: say so in one line, without locals or values
        return report_internal_error(exc)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        return EXIT_FAILURE
    except OSError as exc:
        error_line(f"cannot write output: {exc.strerror or exc}")
        return EXIT_FAILURE
    return result if isinstance(result, int) else 0
