"""Gradient's options on every command: ``--apiKey``, ``--optionsFile``, ``--createOptionsFile``.

As in Gradient's CLI, an options file is YAML whose keys are the command's
option names as spelt on the command line without dashes (``id``, ``name``,
``value``, ``apiKey``, ``entity`` for the ENTITY argument, ...). It is read
with PyYAML's safe loader only, less YAML 1.1's guessing of numbers and
dates: a plain ``0123``, ``1.50`` or ``2026-01-01`` is the text as written
(YAML would read 83, 1.5 and a date), so ``value: 0123`` stores ``0123``
and ``id: 0042`` names project ``0042``. Every option takes text, except the
flags, which take ``true`` or ``false``; a value YAML still reads as
something else (a bare ``yes``, ``!!int 7``) is refused with a hint to quote
it, never turned back into different text. Unlike Gradient, a value given on
the command line wins over the file's. A key that is another command's
option is ignored (one file can serve ``set`` and ``get``); a key no command
knows is an error, so a typo is not silently dropped.

``--createOptionsFile FILE`` writes such a file from the options given (or
their defaults) and exits without running the command. It never writes a
secret value or an API key (their keys are written empty), nor an ``exec
--env NAME=VALUE`` with a literal value (it may be a pasted secret): only
``NAME=secret:REF`` references are written, and a comment at the top says
which entries were left out. ``--apiKey`` is accepted and ignored, with one
note on stderr: there is no server, and the key is never stored or printed.
"""

from __future__ import annotations

from secretstore.console import notice
from secretstore.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Sequence

    from secretstore.cli.spec import Arg, Command, Opt

# Never written to a template: a secret value, an API key.
NEVER_WRITTEN = ("value", "api_key")
# VAR=VALUE options (exec --env): only VAR=secret:NAME references are written.
ASSIGNMENTS = ("env",)
# Gradient's own options, and --store: not part of a template.
_NOT_TEMPLATED = ("options_file", "create_options_file", "store")
MAX_OPTIONS_FILE = 1024 * 1024


def _file_key(param: Arg | Opt) -> str:
    from secretstore.cli.spec import Opt

    return param.key if isinstance(param, Opt) else param.dest


# The plain-scalar guesses an options file keeps: true/false for flags, null for "not given".
# YAML 1.1's int, float and timestamp guesses are dropped (``0123`` would be 83, ``1.50``
# 1.5, ``0x1F`` 31, ``1_000`` 1000): every option but a flag takes text, so a plain scalar
# is the text as written. ``=`` (the "value" key, which safe loading cannot build) goes too;
# ``<<`` stays YAML's merge key.
_KEPT_RESOLVERS = frozenset({
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:yaml",
})


def _text_loader() -> type:
    """PyYAML's SafeLoader without the implicit int, float and timestamp resolvers."""
    import yaml

    class TextLoader(yaml.SafeLoader):
        pass

    TextLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag in _KEPT_RESOLVERS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return TextLoader


def read_options_file(path: str) -> dict[str, object]:
    """The mapping in a YAML options file (safe loading, plain scalars as text), or a one-line error."""
    from secretstore.fsio import read_input

    raw = read_input(path, "options file", MAX_OPTIONS_FILE)
    import yaml

    try:
        document = yaml.load(raw, Loader=_text_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise UsageError(f"options file {path} is not valid YAML{at}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise UsageError(f"options file {path} must hold a mapping of option names to values")
    return document


def _as_value(param: Arg | Opt, raw: object, path: str) -> object:
    from secretstore.cli.spec import Opt

    key = _file_key(param)
    if isinstance(param, Opt) and param.flag:
        if not isinstance(raw, bool):
            raise UsageError(f"options file {path}: {key} must be true or false")
        return raw
    # Text only: anything YAML built from it (a flag, an explicit !!int or !!float, a date,
    # bytes, a mapping) is refused, never turned back into text that may differ from the file's.
    # The value is never echoed: it may be a secret.
    items = raw if isinstance(raw, list) else [raw]
    texts: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(
                f"options file {path}: {key} must be a string",
                hint=f'quote it ({key}: "...") to keep it as written: YAML reads a bare yes, no, on, off, '
                "true, false or a !!tag as something else",
            )
        texts.append(item)
    repeatable = (isinstance(param, Opt) and param.repeatable) or getattr(param, "variadic", False)
    if repeatable:
        return texts
    if len(texts) != 1:
        raise UsageError(f"options file {path}: {key} takes one value")
    return texts[0]


def _every_key() -> set[str]:
    """Every option name any command takes: a key no command knows is a typo, and an error."""
    from secretstore.cli.declarations import ROOT
    from secretstore.cli.spec import Group

    keys: set[str] = set()
    pending: list[object] = [ROOT]
    while pending:
        item = pending.pop()
        if isinstance(item, Group):
            pending.extend(item.commands)
        else:
            keys.update(_file_key(param) for param in item.params)  # type: ignore[attr-defined]
    return keys


def merge_options_file(command: Command, values: dict[str, object], path: str) -> None:
    """Fill the options the command line left unset from the file at ``path``."""
    document = read_options_file(path)
    params = {_file_key(p): p for p in command.params if p.dest not in _NOT_TEMPLATED}
    for key, raw in document.items():
        param = params.get(str(key))
        if param is None:
            if str(key) in _every_key():
                continue  # another command's option (one file serves set and get, as in Gradient)
            known = ", ".join(sorted(params))
            raise UsageError(f"options file {path}: unknown option {str(key)!r}", hint=f"{command.name} takes: {known}")
        if raw is None:
            continue
        given = values.get(param.dest)
        if given not in (None, False, [], getattr(param, "default", None)):
            continue  # the command line wins
        values[param.dest] = _as_value(param, raw, path)


def _references_only(assignments: list[str]) -> tuple[list[str], list[str], int]:
    """(the ``VAR=secret:NAME`` references, the names of the literals left out, how many were left out).

    A literal ``VAR=VALUE`` may be a pasted secret, and an entry without ``=``
    (``--env "$TOKEN"``) may be one whole: neither is written. Only names
    that are plain identifiers are listed, so no name can break the comment line.
    """
    from secretstore.precedence import reference_of

    kept: list[str] = []
    named: list[str] = []
    left_out = 0
    for text in assignments:
        name, sep, value = text.partition("=")
        if sep and name and reference_of(value) is not None:
            kept.append(text)
            continue
        left_out += 1
        if sep and name.isascii() and name.isidentifier() and name not in named:
            named.append(name)
    return kept, named, left_out


def write_template(command: Command, values: dict[str, object], path: str) -> None:
    """Gradient's ``--createOptionsFile``: the command's options as YAML, never a value or key."""
    import yaml

    from secretstore import fsio

    template: dict[str, object] = {}
    withheld = []
    comments: list[str] = []
    literals, entries = 0, ""
    for param in command.params:
        if param.dest in _NOT_TEMPLATED:
            continue
        value = values.get(param.dest)
        if param.dest in NEVER_WRITTEN:
            if value:
                withheld.append(_file_key(param))
            value = None
        if param.dest in ASSIGNMENTS and isinstance(value, list):
            value, named, literals = _references_only([str(item) for item in value])
            if literals:
                key = _file_key(param)
                entries = f"{literals} --{key} {'entry' if literals == 1 else 'entries'} with a literal value"
                comments = [
                    f"# {entries} left out (a value typed on the command line may be a secret).",
                    f"# Add each under {key}: as - NAME=secret:SECRET_NAME (a stored secret) or - NAME=VALUE."
                    + (f" Left out: {', '.join(named)}" if named else ""),
                ]
        if value == []:
            value = None
        template[_file_key(param)] = value
    text = yaml.safe_dump(template, default_flow_style=False, sort_keys=False)
    text = "".join(line + "\n" for line in comments) + text
    from secretstore.cli.formats import output_target

    fsio.atomic_write(output_target(path, "--createOptionsFile"), text.encode("utf-8"))
    notice(f"wrote an options template to {path}; the command was not run")
    if withheld:
        notice(f"left out of the template: {', '.join(withheld)} (a secret value or key is never written)")
    if literals:
        notice(f"left out of the template: {entries} (it may be a secret; only NAME=secret:REF references are written)")


def apply(command: Command, path: Sequence[str], values: dict[str, object]) -> bool:
    """Apply Gradient's options to ``values``; True when the command must not run."""
    if values.get("api_key"):
        notice("--apiKey is ignored: secretstore has no server (the key is not stored)")
    values["api_key"] = None
    options_file = values.get("options_file")
    if isinstance(options_file, str):
        merge_options_file(command, values, options_file)
        if values.get("api_key"):
            notice("apiKey in the options file is ignored: secretstore has no server")
            values["api_key"] = None
    target = values.get("create_options_file")
    if isinstance(target, str):
        write_template(command, values, target)
        return True
    return False
