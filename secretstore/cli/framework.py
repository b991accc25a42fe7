"""typer, built from the declarations: help, usage errors, completion scripts.

Only this module imports typer, and only when a command line needs it: a
line the fast parser does not take (a usage error, ``--install-completion``,
``--show-completion``, a completion request for another shell), or a help
text not yet in the help cache. Each declared command becomes a typer
command whose callback runs the same handler (``cli.execute``) with the same
values, so a line the two parsers saw differently costs speed, never
behaviour.
"""


import inspect
import io
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from typing import Annotated, Any

import typer
import typer.completion
import typer.main

from secretstore import __version__
from secretstore.cli import completion, execute
from secretstore.cli.declarations import ROOT
from secretstore.cli.spec import Arg, Command, Group, Opt
from secretstore.console import PROG, error_line, report_internal_error, silence_stdout
from secretstore.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    SecretStoreError,
    UsageError,
)

_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _completer(param: Arg | Opt) -> Callable[..., list[str]] | None:
    source = param.complete
    if source is None:
        return None

    def complete(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
        import os

        from secretstore import env

        values = completion.values_so_far(os.environ.get(env.COMPLETE, ""))
        return completion.values_for(param, values, incomplete)

    return complete


def _parameter(param: Arg | Opt) -> inspect.Parameter:
    """The typed parameter typer reads for one declared Arg or Opt."""
    kind = inspect.Parameter.KEYWORD_ONLY
    autocompletion = _completer(param)
    if isinstance(param, Arg):
        info = typer.Argument(
            metavar=param.metavar, help=param.help, show_default=False, autocompletion=autocompletion
        )
        if param.variadic:
            return inspect.Parameter(param.dest, kind, annotation=Annotated[list[str], info])
        if param.required:
            return inspect.Parameter(param.dest, kind, annotation=Annotated[str, info])
        return inspect.Parameter(param.dest, kind, default=None, annotation=Annotated[str | None, info])
    if param.flag:
        info = typer.Option(*param.flags, help=param.help)
        return inspect.Parameter(param.dest, kind, default=False, annotation=Annotated[bool, info])
    info = typer.Option(
        *param.flags,
        metavar=param.metavar,
        help=param.help,
        show_default=bool(param.default),
        autocompletion=autocompletion,
    )
    if param.repeatable:
        return inspect.Parameter(param.dest, kind, default=None, annotation=Annotated[list[str] | None, info])
    return inspect.Parameter(param.dest, kind, default=param.default, annotation=Annotated[str | None, info])


HELP_HINT = "run 'secretstore --help' or 'secretstore COMMAND --help'"
_VALUE_HINT = "quote a value that has spaces (--value='...'), or pass it on stdin (--value -) or in a file (--value-file PATH)"
# What click's messages may repeat of the command line: an option or command name, never a
# word that only looks like one (a value that starts with '-' lands in click's "No such option").
# Options are spelt --word-word or --camelCase (--k8s-name, --apiKey), never with '_' (sk_live_...).
_OPTION_NAME = re.compile(r"--?(?=.{1,40}$)[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
# typer's "No such command 'x'." and its " Did you mean 'set'?" (our own command names)
_NO_SUCH_COMMAND = re.compile(r"No such command '[a-z][a-z0-9-]{0,31}'\.(?: Did you mean ('[a-z-]+'(?:, '[a-z-]+')*)\?)?")
_DID_YOU_MEAN = re.compile(r" Did you mean ('[a-z-]+'(?:, '[a-z-]+')*)\?$")


def _takes_value(flags: Sequence[str]) -> bool:
    return "--value" in flags and "--value-file" in flags


def extra_arguments_error(count: int, path: Sequence[str], flags: Sequence[str]) -> UsageError:
    """click's "Got unexpected extra argument(s) (horse battery staple)" repeats the words, and
    what lands there is most often a value with spaces left unquoted: say how many, never what."""
    if count == 1:
        message = "got 1 unexpected extra argument (not shown: it may be part of a secret value)"
    else:
        message = f"got {count} unexpected extra arguments (not shown: they may be part of a secret value)"
    usage = f"'{PROG} {' '.join(path)} --help'"
    if _takes_value(flags):
        return UsageError(message, hint=f"{_VALUE_HINT}; see {usage}")
    return UsageError(message, hint=f"quote an argument that has spaces; {usage} says what the command takes")


def _context_flags(exc: BaseException) -> list[str]:
    """Every option flag of the command a click usage error is about ([] when it names none)."""
    command = getattr(getattr(exc, "ctx", None), "command", None)
    return [flag for param in getattr(command, "params", []) for flag in getattr(param, "opts", [])]


def usage_message(exc: BaseException) -> tuple[str, str]:
    """(message, hint) for a click usage error, without repeating a word that might be a value.

    Kept: option names (``No such option: --bogus``, with click's suggestions), command names,
    "requires an argument", missing arguments. Not repeated: extra arguments, and a word in an
    option's or a command's place that does not look like one.
    """
    message: str = exc.format_message()  # type: ignore[attr-defined]
    if type(exc).__name__ == "NoSuchOption":
        option = str(getattr(exc, "option_name", ""))
        dash_value_hint = "a value that starts with '-' goes after its option (--value=-...) or on stdin (--value -)"
        if not _OPTION_NAME.fullmatch(option):
            hint = dash_value_hint if _takes_value(_context_flags(exc)) else HELP_HINT
            possible = sorted(getattr(exc, "possibilities", None) or [])  # our own option names
            if possible:
                hint = f"did you mean {' or '.join(possible)}? {hint}"
            return "no such option (not shown: a word that starts with '-' but is no option name may be a value)", hint
        if len(option) == 2 and _takes_value(_context_flags(exc)):  # -p of "-p4ss": click names one letter
            return message, f"{dash_value_hint}; {HELP_HINT}"
    if message.startswith("No such command") and not _NO_SUCH_COMMAND.fullmatch(message):
        suggested = _DID_YOU_MEAN.search(message)
        hint = f"did you mean {suggested.group(1)}? {HELP_HINT}" if suggested else HELP_HINT
        return "no such command (not shown: the word does not look like a command name and may be a value)", hint
    if message.startswith("Got unexpected extra argument"):  # commands count their own (_callback): a safety net
        hint = _VALUE_HINT if _takes_value(_context_flags(exc)) else "quote an argument that has spaces"
        return "unexpected extra arguments (not shown: they may be part of a secret value)", f"{hint}; {HELP_HINT}"
    return message, HELP_HINT


def _callback(command: Command, path: list[str]) -> Callable[..., None]:
    flags = [flag for option in command.opts() for flag in option.flags]

    def callback(ctx: typer.Context, **given: Any) -> None:
        if ctx.args:  # allow_extra_args (_add): counted here, never echoed
            raise extra_arguments_error(len(ctx.args), path, flags)
        values: dict[str, object] = {}
        for param in command.params:
            value = given.get(param.dest)
            if isinstance(value, tuple):
                value = list(value)
            if value is None and (getattr(param, "repeatable", False) or getattr(param, "variadic", False)):
                value = []
            values[param.dest] = value
        code = execute(command, path, values, dict(ctx.find_root().params))
        if code:
            raise typer.Exit(code)

    parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    parameters += [_parameter(param) for param in command.params]
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__annotations__ = {p.name: p.annotation for p in parameters}
    callback.__name__ = command.name.replace("-", "_")
    return callback


def _add(app: typer.Typer, item: Command | Group, path: list[str]) -> None:
    if isinstance(item, Group):
        sub = typer.Typer(rich_markup_mode=None, no_args_is_help=True, context_settings=_SETTINGS)
        for child in item.commands:
            _add(sub, child, [*path, item.name])
        app.add_typer(sub, name=item.name, help=item.help, short_help=item.summary)
        return
    # Extra arguments reach the callback, which says how many there were: click's own error
    # repeats them, and an unquoted value with spaces is what usually lands there.
    settings = dict(_SETTINGS, allow_extra_args=True)
    if not item.interspersed:
        settings["allow_interspersed_args"] = False
    callback = _callback(item, [*path, item.name])
    for name in (item.name, *item.aliases):
        app.command(name, help=item.help, short_help=item.summary, context_settings=settings)(callback)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """The typer app for every declared command."""
    app = typer.Typer(
        rich_markup_mode=None,  # plain help: no boxes, '\b' blocks kept as written
        name=PROG,
        help=ROOT.help,
        add_completion=True,  # --install-completion, --show-completion (typer's)
        pretty_exceptions_enable=False,
        pretty_exceptions_show_locals=False,
        context_settings=_SETTINGS,
    )
    store_option = next(o for o in ROOT.params if o.dest == "store")

    @app.callback(invoke_without_command=True)
    def _root(
        ctx: typer.Context,
        store: Annotated[str | None, typer.Option("--store", metavar="DIR", help=store_option.help)] = None,
        version: Annotated[
            bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
        ] = False,
    ) -> None:
        if ctx.invoked_subcommand is None:
            typer.echo(ctx.get_help())
            raise typer.Exit()

    for item in ROOT.commands:
        _add(app, item, [])
    return app


def _plain_arguments(command: Any) -> None:
    """Arguments shown as their metavar alone: no ``<str>`` / ``<list[str]>`` type label and no
    ``{ENTITY}`` braces (typer's wording, not ours)."""
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "argument":
            shown = param.metavar or param.name
            usage = shown + ("..." if param.nargs != 1 else "")
            param.display_type_rich = lambda ctx: None
            param._usage_display_name = lambda usage=usage: usage
    for sub in getattr(command, "commands", {}).values():
        _plain_arguments(sub)


def click_command() -> Any:
    """The click group typer builds from the declarations."""
    group = typer.main.get_command(build_app())
    _plain_arguments(group)
    return group


def completion_option(option: str, shell: str) -> int:
    """``--install-completion SHELL`` / ``--show-completion SHELL``: typer's own callbacks for a
    named shell (typer's flags alone detect the shell). An unknown shell is a usage error, not
    typer's unprefixed message."""
    completion.check_shell(option, shell)
    group = click_command()
    action = typer.completion.install_callback if option == "--install-completion" else typer.completion.show_callback
    with group.make_context(PROG, []) as ctx:
        try:
            action(ctx, None, shell)  # type: ignore[arg-type]  # typer's callbacks ignore the param
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    return 0


def _click_exception_types() -> tuple[type[BaseException], type[BaseException]]:
    """typer's ClickException and Abort, whether typer vendors click or depends on it."""
    mro = typer.BadParameter.__mro__
    click_exception = next(cls for cls in mro if cls.__name__ == "ClickException")
    return click_exception, typer.Abort


def run_typer(argv: Sequence[str]) -> int:
    """Let typer take ``argv``: usage errors, completion options, anything the fast parser left."""
    click_exception, abort = _click_exception_types()
    try:
        if len(argv) == 2 and argv[0] in ("--install-completion", "--show-completion") and argv[1][:1] != "-":
            return completion_option(argv[0], argv[1])
        result = click_command().main(args=list(argv), prog_name=PROG, standalone_mode=False)
    except SecretStoreError as exc:
        error_line(exc.message, exc.hint)
        return exc.exit_code
    except click_exception as exc:
        code = getattr(exc, "exit_code", EXIT_USAGE)
        message, hint = usage_message(exc)
        if message:
            error_line(message, hint)
        return int(code) if code else EXIT_USAGE
    except (abort, KeyboardInterrupt, EOFError):
        error_line("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return EXIT_FAILURE
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:  # typer's completion callbacks exit
        return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    except OSError as exc:
        error_line(f"cannot write output: {exc.strerror or exc}")
        return EXIT_FAILURE
    except Exception as exc:  # a bug: one line, without locals or values
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


def render_help(path: Sequence[str]) -> str:
    """typer's help text for the command or group at ``path`` (``[]`` for the program)."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        try:
            click_command().main(args=[*path, "--help"], prog_name=PROG, standalone_mode=False)
        except SystemExit:
            pass
    return buffer.getvalue()
