"""Shell completion: typer's protocol, answered from the declarations without importing typer.

``secretstore --install-completion`` (typer) installs typer's script for
bash, zsh or fish. On each TAB the shell runs ``secretstore`` with
``_SECRETSTORE_COMPLETE=complete_bash`` (``complete_zsh``,
``complete_fish``) and the words typed so far (``COMP_WORDS`` and
``COMP_CWORD`` for bash, ``_TYPER_COMPLETE_ARGS`` for zsh and fish). This
module answers that request as typer's completion classes would for the
typer objects built from the same declarations: command names with their
summaries, option names not yet given, and option or argument values from a
completion source (entities, project and cluster ids read from the store,
secret names; never a value). One difference: typer passes help texts
through rich, which wraps them at 80 columns; here they stay on one line.
Another shell (PowerShell), or another instruction (``source_bash``), goes
to typer.

Reading the store for ids and names needs no key and prints nothing: a
completion request never writes to stderr, and any error is simply no
completions.
"""

from __future__ import annotations

import os
import sys

from secretstore.cli.spec import Arg, Command, Group, Opt

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Sequence

    from secretstore.store import Store

SHELLS = ("bash", "zsh", "fish")
# Options typer adds, offered after the declared ones (typer's own help texts).
HELP_ITEMS = (("--help", "Show this message and exit."), ("-h", "Show this message and exit."))
COMMAND_HELP_ITEMS = HELP_ITEMS[::-1]  # typer lists -h first for a command and the root, --help first for a group
ROOT_ITEMS = (
    ("--install-completion", "Install completion for the current shell."),
    ("--show-completion", "Show completion for the current shell, to copy it or customize the installation."),
)


# The shells typer writes a completion script for (``--install-completion SHELL``, ``--show-completion SHELL``).
SCRIPT_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def check_shell(option: str, shell: str) -> None:
    """Refuse, as a usage error, a SHELL typer has no script for (typer's own message goes to
    stdout or stderr unprefixed and exits 1; an empty SHELL did nothing and exited 0)."""
    if shell not in SCRIPT_SHELLS:
        from secretstore.errors import UsageError

        shown = f"'{shell}'" if shell else "an empty shell name"
        raise UsageError(f"{option}: {shown} is not a supported shell (use {', '.join(SCRIPT_SHELLS)})")


class Item:
    __slots__ = ("help", "value")

    def __init__(self, value: str, help: str | None = None) -> None:
        self.value = value
        self.help = help

    def __repr__(self) -> str:
        return f"Item({self.value!r})"


def split_arg_string(text: str) -> list[str]:
    """The words of a command line as click's ``split_arg_string`` splits them (shlex, posix)."""
    import shlex

    lex = shlex.shlex(text, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out: list[str] = []
    try:
        for token in lex:
            out.append(token)
    except ValueError:
        out.append(lex.token)
    return out


# --- completion sources ---------------------------------------------------------------


def _store(values: dict[str, object]) -> Store:
    from secretstore.context import resolve_store
    from secretstore.paths import listing_dir
    from secretstore.store import Store

    flag = values.get("store")
    root, _source = resolve_store(flag if isinstance(flag, str) else None)
    return Store(root, listing_dir=listing_dir())


def _ids(values: dict[str, object], entity: str) -> list[str]:
    store = _store(values)
    return [scope.scope_id for scope in store.scopes() if scope.entity == entity and scope.scope_id]


def _source_values(param: Arg | Opt, values: dict[str, object]) -> list[str]:
    source = param.complete
    if source == "entity":
        return ["team", "project", "cluster"]
    if source == "choices" and isinstance(param, Opt):
        return list(param.choices)
    if source in ("project_id", "cluster_id"):
        return _ids(values, source[: -len("_id")])
    if source == "scope_id":
        entity = values.get("entity")
        if entity in ("project", "cluster"):
            return _ids(values, str(entity))
        if entity == "team":
            from secretstore.commands.info import read_team_id

            team_id = read_team_id(_store(values))
            return [team_id] if team_id else []
        return []
    if source == "secret_name":
        from secretstore.store import Scope

        entity, scope_id = values.get("entity"), values.get("scope_id")
        if entity not in ("team", "project", "cluster"):
            return []
        scope = Scope("team") if entity == "team" else Scope(str(entity), str(scope_id) if scope_id else None)
        if scope.entity != "team" and not scope.scope_id:
            return []
        from secretstore.rules import is_valid_id

        if scope.scope_id is not None and not is_valid_id(scope.scope_id):
            return []
        return [row[0] for row in _store(values).listing(scope)]
    return []


def values_for(param: Arg | Opt, values: dict[str, object], incomplete: str) -> list[str]:
    """The completions of ``param``'s value that start with ``incomplete`` (names and ids, never values)."""
    from secretstore.errors import SecretStoreError

    try:
        found = _source_values(param, values)
    except (SecretStoreError, OSError, ValueError):
        return []
    return [value for value in found if value.startswith(incomplete)]


# --- resolving what is being completed (click's algorithm) --------------------------------


class _State:
    """The command reached by the words so far, what was given, and the arguments filled."""

    __slots__ = ("command", "given", "group", "values")

    def __init__(self, group: Group) -> None:
        self.group = group
        self.command: Command | None = None
        self.given: set[str] = set()
        self.values: dict[str, object] = {}


def _option_named(options: Sequence[Opt], word: str) -> Opt | None:
    for option in options:
        if word in option.flags:
            return option
    return None


def _parse_options(words: list[str], options: Sequence[Opt], state: _State, interspersed: bool) -> list[str]:
    """Consume options from ``words`` as click's resilient parsing would; the positional words."""
    positional: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            positional.extend(words[index:])
            break
        if word[:1] == "-" and len(word) > 1:
            name, sep, inline = word.partition("=")
            option = _option_named(options, name if word.startswith("--") else word[:2])
            if option is None:
                continue
            state.given.add(option.dest)
            if option.flag:
                state.values[option.dest] = True
                continue
            if not sep and not word.startswith("--") and len(word) > 2:
                inline, sep = word[2:], "="
            if not sep:
                if index >= len(words):
                    break
                inline = words[index]
                index += 1
            state.values[option.dest] = inline
            continue
        positional.append(word)
        if not interspersed:
            positional.extend(words[index:])
            break
    return positional


def _resolve(args: list[str], root: Group) -> _State:
    state = _State(root)
    words = list(args)
    while True:
        group = state.group
        positional = _parse_options(words, group.params, state, interspersed=False)
        if not positional:
            return state
        item = group.find(positional[0])
        if item is None:
            return state
        words = positional[1:]
        if isinstance(item, Group):
            state.group = item
            state.given = set()
            continue
        state.command = item
        state.given = set()
        positional = _parse_options(words, item.opts(), state, item.interspersed)
        for argument in item.args():
            if argument.variadic:
                state.values[argument.dest] = positional
                state.given.add(argument.dest)
                positional = []
            elif positional:
                state.values[argument.dest] = positional.pop(0)
                state.given.add(argument.dest)
        return state


def _option_items(options: Sequence[Opt], given: set[str], incomplete: str) -> list[Item]:
    items: list[Item] = []
    for option in options:
        if option.dest in given and not option.repeatable:
            continue
        items.extend(Item(name, option.help) for name in option.flags if name.startswith(incomplete))
    return items


def completions(args: list[str], incomplete: str, root: Group | None = None) -> list[Item]:
    """What typer offers for ``incomplete`` after ``args`` (the words without the program name)."""
    if root is None:
        from secretstore.cli.declarations import ROOT

        root = ROOT
    args = list(args)
    state = _resolve(args, root)
    if incomplete == "=":
        incomplete = ""
    elif "=" in incomplete and incomplete[:1] == "-":
        name, _sep, incomplete = incomplete.partition("=")
        args.append(name)
    command = state.command
    options = command.opts() if command is not None else state.group.params
    wants_options = bool(incomplete) and not incomplete[0].isalnum()
    if "--" not in args and incomplete[:1] == "-":
        return _container_items(state, options, incomplete, wants_options)
    last = args[-1] if args else ""
    if last[:1] == "-":
        option = _option_named(options, last)
        if option is not None and not option.flag:
            return [Item(v) for v in values_for(option, state.values, incomplete)]
    if command is not None:
        for argument in command.args():
            if argument.variadic or argument.dest not in state.given:
                return [Item(v) for v in values_for(argument, state.values, incomplete)]
    return _container_items(state, options, incomplete, wants_options)


def _container_items(state: _State, options: Sequence[Opt], incomplete: str, wants_options: bool) -> list[Item]:
    items: list[Item] = []
    if state.command is None:
        # typer lists a group's commands first, then its sub-groups, each in declaration order
        names = sorted(state.group.names(), key=lambda pair: isinstance(pair[1], Group))
        items += [Item(name, item.summary) for name, item in names if name.startswith(incomplete)]
    if wants_options:
        items += _option_items(options, state.given, incomplete)
        extra: tuple[tuple[str, str], ...]
        if state.command is not None:
            extra = COMMAND_HELP_ITEMS
        else:
            extra = HELP_ITEMS if state.group.params == [] else ROOT_ITEMS + COMMAND_HELP_ITEMS
        items += [Item(name, text) for name, text in extra if name.startswith(incomplete)]
    return items


# --- the protocol ----------------------------------------------------------------------


def _zsh_escape(text: str) -> str:
    return (
        text.replace('"', '""').replace("'", "''").replace("$", "\\$").replace("`", "\\`").replace(":", r"\\:")
    )


def _words(shell: str) -> tuple[list[str], str]:
    if shell == "bash":
        words = split_arg_string(os.environ.get("COMP_WORDS", ""))
        try:
            cword = int(os.environ.get("COMP_CWORD", "0"))
        except ValueError:
            cword = 0
        args = words[1:cword]
        incomplete = words[cword] if cword < len(words) else ""
        return args, incomplete
    line = os.environ.get("_TYPER_COMPLETE_ARGS", "")
    words = split_arg_string(line)
    args = words[1:]
    if args and not line.endswith(" "):
        return args[:-1], args[-1]
    return args, ""


def values_so_far(instruction: str) -> dict[str, object]:
    """The values given so far in the completion request ``instruction`` describes (for typer's
    completers: click's resilient parsing leaves them unset when an option's value is being typed)."""
    shell = instruction.partition("_")[2]
    if shell not in SHELLS:
        return {}
    from secretstore.cli.declarations import ROOT

    args, _incomplete = _words(shell)
    return _resolve(args, ROOT).values


def render(shell: str, items: Sequence[Item]) -> str:
    """The reply typer's completion class for ``shell`` prints (without the final newline)."""
    if shell == "bash":
        return "\n".join(item.value for item in items)
    if shell == "zsh":
        lines = [
            f'"{_zsh_escape(item.value)}":"{_zsh_escape(item.help)}"' if item.help else f'"{_zsh_escape(item.value)}"'
            for item in items
        ]
        return f"_arguments '*: :(({chr(10).join(lines)}))'" if lines else "_files"
    return "\n".join(
        f"{item.value}\t{' '.join(item.help.split())}" if item.help else item.value for item in items
    )


def answer(instruction: str) -> int | None:
    """Answer a completion request (``complete_bash`` ...); None when typer should."""
    action, _sep, shell = instruction.partition("_")
    if action != "complete" or shell not in SHELLS:
        return None
    args, incomplete = _words(shell)
    try:
        items = completions(args, incomplete)
    except Exception:  # a completion must never print a traceback into the user's prompt
        items = []
    if shell == "fish":
        mode = os.environ.get("_TYPER_COMPLETE_FISH_ACTION", "")
        if mode == "is-args":
            return 0 if items else 1
        if mode != "get-args" or not items:
            sys.stdout.write("\n")
            return 0
    sys.stdout.write(render(shell, items) + "\n")
    sys.stdout.flush()
    return 0
