"""The command line: declarations, a fast parser, handlers, and typer for help and usage errors.

``run`` is the whole CLI. An ordinary command line is parsed from
``cli/declarations.py`` by ``cli/parser.py`` and handed to its handler
without importing typer. ``--help`` prints typer's rendering of the same
declarations, cached per version (``cli/helpcache.py``); a completion request
is answered in typer's protocol (``cli/completion.py``); a line that is not
well formed, ``--install-completion`` and ``--show-completion`` go to typer
itself (``cli/framework.py``). Every error becomes one line on stderr and a
documented exit code; no traceback reaches the user.
"""

from __future__ import annotations

import os
import sys

from secretstore import __version__
from secretstore.console import (
    PROG,
    disable_core_dumps,
    print_line,
    run_reporting_errors,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Sequence

    from secretstore.cli.spec import Command


# Options that name where secrets are: given empty, they are a mistake, not "not given".
_PLACES = frozenset({"store", "project", "cluster", "scope_id"})


def execute(command: Command, path: Sequence[str], values: dict[str, object], root_values: dict[str, object]) -> int:
    """Run ``command``'s handler with ``values``: what both parsers end in.

    Applies what every command shares first: the global ``--store`` (the
    command's own wins), Gradient's ``--apiKey`` (ignored, with a note),
    ``--optionsFile`` and ``--createOptionsFile``.
    """
    from secretstore.cli.spec import Args

    if root_values.get("store") == "" and not values.get("store"):
        values["store"] = ""  # refused below, as the command's own would be
    if not values.get("store") and root_values.get("store"):
        values["store"] = root_values["store"]
    for option in command.opts():
        if option.dest in _PLACES and values.get(option.dest) == "":
            from secretstore.errors import UsageError

            # `--store "$DIR"` with DIR unset must not quietly mean the default store, nor
            # `--project "$ID"` a run without the project.
            raise UsageError(f"{option.flags[0]} is empty: give a value, or leave the option out")
    if command.gradient and (values.get("api_key") or values.get("options_file") or values.get("create_options_file")):
        from secretstore.cli import gradient

        if gradient.apply(command, path, values):
            return 0  # --createOptionsFile: the template is written, the command does not run
    for argument in command.args():
        if argument.required and values.get(argument.dest) in (None, []):
            from secretstore.errors import UsageError

            raise UsageError(f"missing argument {argument.metavar}")
    module_name, _sep, function_name = command.handler.partition(":")
    # __import__ rather than importlib.import_module: importlib costs every run an import
    module = __import__(f"secretstore.cli.{module_name}", fromlist=[function_name])
    handler = getattr(module, function_name)
    code = handler(Args(command, path, values))
    return 0 if code is None else int(code)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``) and return the exit code; never raise."""
    from secretstore import env

    disable_core_dumps()
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(env.COMPLETE):
        from secretstore.cli import completion

        answered = completion.answer(os.environ[env.COMPLETE])
        if answered is not None:
            return answered
        from secretstore.cli import framework

        return framework.run_typer(args)
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.parser import parse

    parsed = parse(args, ROOT)
    if parsed.kind == "run":
        command = parsed.command
        assert command is not None
        return run_reporting_errors(lambda: execute(command, parsed.path, parsed.values, parsed.root_values))
    if parsed.kind == "help":
        from secretstore.cli import helpcache

        return run_reporting_errors(lambda: helpcache.show(parsed.path))
    if parsed.kind == "version":
        return run_reporting_errors(lambda: print_line(f"{PROG} {__version__}"))
    from secretstore.cli import framework

    return framework.run_typer(args)
