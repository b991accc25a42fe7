"""The shape of a command declaration: plain data, read by the fast parser and by typer.

``cli/declarations.py`` holds every command as a ``Command`` (or ``Group``)
made of ``Arg`` and ``Opt``. Nothing here imports anything: these objects
are built on every run.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Sequence


class Arg:
    """A positional argument. ``variadic`` takes every remaining word (exec's CMD)."""

    __slots__ = ("complete", "dest", "help", "metavar", "required", "variadic")

    def __init__(
        self,
        dest: str,
        metavar: str,
        help: str,
        *,
        required: bool = True,
        variadic: bool = False,
        complete: str | None = None,
    ) -> None:
        self.dest = dest
        self.metavar = metavar
        self.help = help
        self.required = required
        self.variadic = variadic
        self.complete = complete

    def __repr__(self) -> str:
        return f"Arg({self.dest!r}, {self.metavar!r}, {self.help!r}, {self.required}, {self.variadic}, {self.complete!r})"

    @property
    def default(self) -> object:
        return [] if self.variadic else None


class Opt:
    """An option: ``flag`` (no value, True when given), or a value (``repeatable``: a list).

    ``flags`` are the spellings (``("--format", "-f")``); ``dest`` is the
    attribute the handler reads; ``complete`` names a completion source
    (``cli/completion.py``); ``choices`` are offered by completion and listed
    in help (the handler validates, so the error is secretstore's own).
    ``key`` is the option's name in a Gradient ``--optionsFile``.
    """

    __slots__ = ("choices", "complete", "default", "dest", "flag", "flags", "help", "metavar", "repeatable")

    def __init__(
        self,
        flags: Sequence[str],
        dest: str,
        help: str,
        *,
        metavar: str = "",
        flag: bool = False,
        repeatable: bool = False,
        default: str | None = None,
        choices: Sequence[str] = (),
        complete: str | None = None,
    ) -> None:
        self.flags = tuple(flags)
        self.dest = dest
        self.help = help
        self.metavar = metavar
        self.flag = flag
        self.repeatable = repeatable
        self.default = default
        self.choices = tuple(choices)
        self.complete = "choices" if choices and complete is None else complete

    def __repr__(self) -> str:
        return (
            f"Opt({self.flags!r}, {self.dest!r}, {self.help!r}, {self.metavar!r}, {self.flag}, "
            f"{self.repeatable}, {self.default!r}, {self.choices!r}, {self.complete!r})"
        )

    @property
    def key(self) -> str:
        """The long name without dashes: ``--apiKey`` -> ``apiKey``."""
        return next(f for f in self.flags if f.startswith("--"))[2:]

    def empty(self) -> object:
        """The value when the option is not given."""
        if self.flag:
            return False
        if self.repeatable:
            return []
        return self.default


class Command:
    """One command: its words, help, parameters in display order, and handler.

    ``handler`` is ``"module:function"`` under ``secretstore.cli``; the
    function takes the parsed ``Args`` and returns an exit code or None.
    ``interspersed=False`` ends the options at the first argument (exec:
    everything after it belongs to the program). ``gradient`` adds the
    options every Gradient command takes (``--apiKey``, ``--optionsFile``,
    ``--createOptionsFile``).
    """

    __slots__ = ("aliases", "gradient", "handler", "help", "interspersed", "name", "params", "summary")

    def __init__(
        self,
        name: str,
        summary: str,
        help: str,
        handler: str,
        params: Sequence[Arg | Opt] = (),
        *,
        aliases: Sequence[str] = (),
        interspersed: bool = True,
        gradient: bool = True,
    ) -> None:
        self.name = name
        self.summary = summary
        self.help = help
        self.handler = handler
        self.params = list(params)
        self.aliases = tuple(aliases)
        self.interspersed = interspersed
        self.gradient = gradient

    def __repr__(self) -> str:
        return (
            f"Command({self.name!r}, {self.summary!r}, {self.help!r}, {self.handler!r}, {self.params!r}, "
            f"{self.aliases!r}, {self.interspersed}, {self.gradient})"
        )

    def args(self) -> list[Arg]:
        return [p for p in self.params if isinstance(p, Arg)]

    def opts(self) -> list[Opt]:
        return [p for p in self.params if isinstance(p, Opt)]


class Group:
    """Commands under one word (``secrets``, ``recipients``, ``git``), or the root."""

    __slots__ = ("commands", "help", "name", "params", "summary")

    def __init__(
        self, name: str, summary: str, help: str, commands: Sequence[Command | Group], params: Sequence[Opt] = ()
    ) -> None:
        self.name = name
        self.summary = summary
        self.help = help
        self.commands = list(commands)
        self.params = list(params)

    def __repr__(self) -> str:
        return f"Group({self.name!r}, {self.summary!r}, {self.help!r}, {self.commands!r}, {self.params!r})"

    def find(self, word: str) -> Command | Group | None:
        for item in self.commands:
            if item.name == word or (isinstance(item, Command) and word in item.aliases):
                return item
        return None

    def names(self) -> list[tuple[str, Command | Group]]:
        """Every word this group answers to, aliases included, in display order."""
        found: list[tuple[str, Command | Group]] = []
        for item in self.commands:
            found.append((item.name, item))
            if isinstance(item, Command):
                found.extend((alias, item) for alias in item.aliases)
        return found


class Args:
    """The parsed values of one command line: one attribute per ``dest``, plus ``path`` and ``command``."""

    def __init__(self, command: Command, path: Sequence[str], values: dict[str, object]) -> None:
        self.command = command
        self.path = list(path)
        self.__dict__.update(values)

    def __repr__(self) -> str:  # never values: a --value may be a secret
        return f"Args({' '.join(self.path)})"

    def get(self, dest: str) -> object:
        return self.__dict__.get(dest)
