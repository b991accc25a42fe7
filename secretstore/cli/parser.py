"""The fast parser: a command line -> (command, values), from the declarations, without typer.

It accepts what click (typer's parser) accepts for a well-formed line:
``--opt value``, ``--opt=value``, ``-o value``, ``-ovalue``, flags, options
and arguments in any order (up to the first argument for exec), ``--`` to
end the options, the last of a repeated option winning. Anything else is
not guessed at: ``parse`` says so (``Fallback``), and typer, built from the
same declarations, answers with its usage error. A help request is
``Help``. A line the two parsers saw differently would cost only speed:
typer's callback runs the same handler with the same values.
"""

from __future__ import annotations

from secretstore.cli.spec import Command, Group, Opt

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Sequence

HELP_FLAGS = ("-h", "--help")


class Parsed:
    """What a command line asks for.

    ``kind`` is ``run`` (``command`` with ``values``), ``help`` (the help of
    ``path``), ``version``, or ``fallback`` (let typer answer).
    """

    __slots__ = ("command", "kind", "path", "root_values", "values")

    def __init__(
        self,
        kind: str,
        path: Sequence[str] = (),
        command: Command | None = None,
        values: dict[str, object] | None = None,
        root_values: dict[str, object] | None = None,
    ) -> None:
        self.kind = kind
        self.path = list(path)
        self.command = command
        self.values = values or {}
        self.root_values = root_values or {}

    def __repr__(self) -> str:  # never values
        return f"Parsed({self.kind!r}, {self.path!r})"


FALLBACK = Parsed("fallback")


def _find_option(options: Sequence[Opt], word: str) -> tuple[Opt | None, str | None]:
    """(option, inline value) for ``word`` (``--x=v``, ``-xv``); (None, None) when unknown."""
    name, sep, inline = word.partition("=")
    if word.startswith("--"):
        for option in options:
            if name in option.flags:
                return option, (inline if sep else None)
        return None, None
    short = word[:2]
    for option in options:
        if short in option.flags:
            rest = word[2:]
            return option, (rest if rest else None)
    return None, None


def _parse_options(
    words: Sequence[str], options: Sequence[Opt], values: dict[str, object], *, stop_at_argument: bool
) -> tuple[list[str], bool, bool] | None:
    """Fill ``values`` from ``words``; (positional words, help asked, ``--`` seen), or None to fall back."""
    positional: list[str] = []
    help_asked = False
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            positional.extend(words[index:])
            return positional, help_asked, True
        if not word.startswith("-") or word == "-":
            positional.append(word)
            if stop_at_argument:
                positional.extend(words[index:])
                return positional, help_asked, False
            continue
        if word in HELP_FLAGS:
            help_asked = True
            continue
        option, inline = _find_option(options, word)
        if option is None:
            return None  # unknown, misspelt, or -abc bundles: typer says what is wrong
        if option.flag:
            if inline is not None:
                return None  # --flag=value
            values[option.dest] = True
            continue
        if inline is None:
            if index >= len(words):
                return None  # the value is missing
            inline = words[index]
            index += 1
        if option.repeatable:
            values.setdefault(option.dest, [])
            values[option.dest].append(inline)  # type: ignore[attr-defined]
        else:
            values[option.dest] = inline
    return positional, help_asked, False


def parse_command(command: Command, words: Sequence[str], *, lenient_arguments: bool = False) -> tuple[dict[str, object], bool] | None:
    """(values, help asked) for the words after ``command``'s name, or None to fall back.

    ``lenient_arguments``: a missing required argument is left None (an
    options file may still give it).
    """
    values: dict[str, object] = {}
    parsed = _parse_options(words, command.opts(), values, stop_at_argument=not command.interspersed)
    if parsed is None:
        return None
    positional, help_asked, _dashes = parsed
    if help_asked:
        return values, True
    for option in command.opts():
        if option.dest not in values:
            values[option.dest] = option.empty()
    arguments = command.args()
    for argument in arguments:
        if argument.variadic:
            values[argument.dest] = positional
            positional = []
            if not values[argument.dest] and argument.required:
                return None
            continue
        if positional:
            values[argument.dest] = positional.pop(0)
        elif argument.required and not lenient_arguments:
            return None  # typer: "Missing argument"
        else:
            values[argument.dest] = None
    if positional:
        return None  # typer: "Got unexpected extra argument"
    return values, False


def parse(argv: Sequence[str], root: Group) -> Parsed:
    """What ``argv`` (without the program name) asks for."""
    root_values: dict[str, object] = {option.dest: option.empty() for option in root.params}
    words = list(argv)
    index = 0
    while index < len(words) and words[index].startswith("-"):
        word = words[index]
        if word in HELP_FLAGS:
            return Parsed("help", [], root_values=root_values)
        option, inline = _find_option(root.params, word)
        if option is None:
            return FALLBACK  # --install-completion, --show-completion, unknown options
        index += 1
        if option.flag:
            if inline is not None:
                return FALLBACK
            root_values[option.dest] = True
            continue
        if inline is None:
            if index >= len(words):
                return FALLBACK
            inline = words[index]
            index += 1
        root_values[option.dest] = inline
    if root_values.get("version"):
        return Parsed("version", root_values=root_values)
    path: list[str] = []
    group: Group = root
    while True:
        if index >= len(words):
            return Parsed("help", path, root_values=root_values)  # a bare group prints its help
        word = words[index]
        if word in HELP_FLAGS:
            return Parsed("help", path, root_values=root_values)
        item = group.find(word)
        if item is None:
            return FALLBACK  # "No such command"
        index += 1
        path.append(item.name)
        if isinstance(item, Group):
            group = item
            continue
        rest = words[index:]
        lenient = any(w == "--optionsFile" or w.startswith("--optionsFile=") for w in rest)
        result = parse_command(item, rest, lenient_arguments=lenient)
        if result is None:
            return FALLBACK
        values, help_asked = result
        if help_asked:
            return Parsed("help", path, root_values=root_values)
        return Parsed("run", path, item, values, root_values)
