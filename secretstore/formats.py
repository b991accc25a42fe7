"""Export, import and template injection of secrets: pure functions, no I/O.

Secrets are a mapping of name -> value.  Names follow ``^[A-Za-z][A-Za-z0-9_]*$``
(at most 255 characters); values are UTF-8 strings without NUL that may span
lines and contain any character.

Every error raised here is one line and never contains a secret value: it may
name a secret, a line number or the input's source (file name).  Text read
from an input is shown only when it is a valid secret name that the input
itself uses as a name (the key of ``KEY=value``, a JSON key); a bare line, or
a key that is not a valid name, is referred to by its line or entry number:
in a mangled file it is often a pasted value.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

from secretstore.errors import NotFoundError, StoreFormatError, UsageError
from secretstore.rules import is_valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # json, base64 and typing are imported where used: export and import start fast
    from typing import Any

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "parse_dotenv",
    "parse_import",
    "parse_json",
    "render",
    "render_template",
    "template_references",
]

EXPORT_FORMATS = ("dotenv", "json", "shell", "k8s")
IMPORT_FORMATS = ("dotenv", "json")

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME_MAX = 255

# Kubernetes object names (DNS-1123 subdomain) and namespaces (DNS-1123 label).
_DNS1123_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(rf"{_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*")
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_LABEL_MAX = 63

# Every attempt at a template reference: ``{{``, blanks, ``secret`` (any case),
# blanks, ``:``, then the body up to the first ``}}`` on that line ("close"), or
# to the line's end when none closes it.  A valid reference is the one case with
# ``secret`` in lowercase, no blank around the ``:`` and a valid name as the body
# (blanks after it allowed): ``_template_references`` decides, for inject's one
# parser.  The body cannot backtrack (one ``}`` at a time), so the scan is linear.
_PLACEHOLDER = re.compile(
    r"\{\{[ \t]*(?P<word>secret)(?P<before>[ \t]*):(?P<after>[ \t]*)"
    r"(?P<body>[^\n}]*(?:\}(?!\})[^\n}]*)*)(?P<close>\}\}|\n|\Z)",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- helpers


def _label(text: str, limit: int = 80) -> str:
    """Render a name or source for a one-line message.

    Valid names are shown as they are; anything else (a key read from a file,
    which may contain newlines or control characters) is shown as a truncated
    ``repr``, which is always one line.
    """
    if _NAME_RE.fullmatch(text) and len(text) <= limit:
        return text
    shown = repr(text)
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


def _source(source: str) -> str:
    """A source (file name) fit for a one-line message."""
    if source.isprintable():
        return source
    return repr(source)


def _check_secrets(secrets: Mapping[str, str]) -> list[tuple[str, str]]:
    """Validate names and values for export; return the items sorted by name."""
    items = sorted(secrets.items())
    for name, value in items:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > _NAME_MAX:
            raise UsageError(
                f"invalid secret name {_label(str(name))}: "
                "names match [A-Za-z][A-Za-z0-9_]* (at most 255 characters)"
            )
        if not isinstance(value, str):
            raise UsageError(f"value of secret {name} is not a string")
        if "\0" in value:
            raise UsageError(f"value of secret {name} contains a NUL character")
    return items


# --------------------------------------------------------------------------- export


def dotenv_quote(name: str, value: str) -> str:
    r"""Quote ``value`` so that POSIX sh and python-dotenv read back exactly ``value``, or refuse.

    The two readers share only a little quoting. ``set -a; . ./.env`` in sh
    (dash, bash) and ``dotenv_values(path, interpolate=False)`` agree on:

    1. ``'value'`` when the value holds no ``'``, no ``\\`` (two backslashes
       in a row), no trailing ``\`` and no carriage return: sh keeps
       everything between single quotes, and python-dotenv decodes only
       ``\\`` and ``\'`` there;
    2. otherwise ``"value"`` with ``\`` written ``\\`` and ``"`` written ``\"``,
       when the value holds no ``$``, no backtick and no carriage return: both
       decode exactly those two escapes inside double quotes, and sh would
       expand ``$`` and backticks;
    3. nothing else: a carriage return is read back as a newline by
       python-dotenv from a file (text mode) and can only be escaped in a way
       sh does not decode; and a ``$`` or backtick together with ``'``, ``\\``
       or a trailing ``\`` needs two quoting styles on one line, which
       python-dotenv cannot read.

    Raises UsageError naming ``name`` (never the value) in case 3.
    """
    if "\r" not in value:
        if "'" not in value and "\\\\" not in value and not value.endswith("\\"):
            return "'" + value + "'"
        if "$" not in value and "`" not in value:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise UsageError(
        f"secret {name} cannot be written as dotenv: sh and python-dotenv would read its value "
        "differently (docs/exec.md, 'dotenv quoting')",
        hint="use --format json, or --format shell (safe to eval for any value)",
    )


def _render_dotenv(items: list[tuple[str, str]]) -> str:
    return "".join(f"{name}={dotenv_quote(name, value)}\n" for name, value in items)


def _render_json(items: list[tuple[str, str]]) -> str:
    import json

    return json.dumps(dict(items), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _shell_quote(value: str) -> str:
    """Quote for POSIX sh and bash: always single quotes, ``'`` as ``'\\''``.

    Inside single quotes the shell interprets nothing (no ``$``, backslash or
    newline processing), so any value without NUL survives ``eval``.
    """
    return "'" + value.replace("'", "'\\''") + "'"


def _render_shell(items: list[tuple[str, str]]) -> str:
    return "".join(f"export {name}={_shell_quote(value)}\n" for name, value in items)


def _render_k8s(items: list[tuple[str, str]], name: str, namespace: str | None) -> str:
    if len(name) > _DNS1123_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN_RE.fullmatch(name):
        raise UsageError(
            f"invalid Kubernetes Secret name {_label(name)}: it must be a DNS-1123 subdomain "
            "(lowercase letters, digits, '-' and '.', at most 253 characters)"
        )
    if namespace is not None and (
        len(namespace) > _DNS1123_LABEL_MAX or not _DNS1123_LABEL_RE.fullmatch(namespace)
    ):
        raise UsageError(
            f"invalid Kubernetes namespace {_label(namespace)}: it must be a DNS-1123 label "
            "(lowercase letters, digits and '-', at most 63 characters)"
        )
    # Every scalar is double-quoted: the name, namespace and keys could
    # otherwise be read as numbers or YAML 1.1 booleans (``1e3``, ``y``, ``on``),
    # and they only hold characters that need no escaping inside double quotes.
    # Base64 keeps the values free of any YAML quoting question.
    lines = [
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        f'  name: "{name}"',
    ]
    if namespace is not None:
        lines.append(f'  namespace: "{namespace}"')
    lines.append("type: Opaque")
    if not items:
        lines.append("data: {}")
    else:
        lines.append("data:")
        for key, value in items:
            import base64

            encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
            lines.append(f'  "{key}": "{encoded}"')
    return "\n".join(lines) + "\n"


def render(
    secrets: Mapping[str, str],
    fmt: str,
    *,
    k8s_name: str = "secretstore",
    k8s_namespace: str | None = None,
) -> str:
    """Render ``secrets`` in export format ``fmt``, sorted by name.

    ``dotenv``
        ``NAME='value'`` or ``NAME="value"`` lines (``dotenv_quote``): read back
        exactly by ``. ./file`` in POSIX sh (dash, bash) and by
        ``dotenv.dotenv_values(path, interpolate=False)``, and never executing
        anything in sh; a value no form can carry for both is refused.
        Newlines are kept as they are. With interpolation on (the default of
        ``dotenv_values`` and ``load_dotenv``), python-dotenv 1.2 expands
        ``${...}`` even inside single quotes, so no quoting can protect such
        values: consumers must pass ``interpolate=False``.
    ``json``
        One JSON object, sorted keys, indent 2, non-ASCII kept, trailing newline.
    ``shell``
        ``export NAME='value'`` lines, safe to ``eval`` in POSIX sh and bash.
    ``k8s``
        A Kubernetes ``Secret`` manifest (YAML) named ``k8s_name`` (a DNS-1123
        subdomain), in ``k8s_namespace`` if given (a DNS-1123 label), with each
        value base64-encoded under ``data``.

    Raises UsageError for an unknown format, an invalid secret name, a value
    with NUL, a value dotenv cannot carry safely, or an invalid Kubernetes
    name or namespace.
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown export format {_label(fmt)}; valid formats: {', '.join(EXPORT_FORMATS)}"
        )
    items = _check_secrets(secrets)
    if fmt == "dotenv":
        return _render_dotenv(items)
    if fmt == "json":
        return _render_json(items)
    if fmt == "shell":
        return _render_shell(items)
    return _render_k8s(items, k8s_name, k8s_namespace)


# --------------------------------------------------------------------------- import

_NEWLINE_RE = re.compile(r"\r\n|\n|\r")
_LEADING_SPACE_RE = re.compile(r"\s*")


def parse_dotenv(text: str, *, source: str = "<input>") -> dict[str, str]:
    """Parse dotenv ``text`` with python-dotenv's parser, without interpolation.

    The result equals ``dotenv.dotenv_values(stream=io.StringIO(text),
    interpolate=False)`` (quotes, ``export`` prefix, comments and multi-line
    quoted values handled by python-dotenv), except that:

    * a line python-dotenv cannot parse (which it would log and skip) raises
      StoreFormatError ``<source>: cannot parse line N``;
    * a line without ``=`` (``FOO`` alone, which python-dotenv returns as a key
      with the value None) raises UsageError ``<source>: line N has no '='``:
      such a line is more often a pasted value (``ghp_...``, ``sk_live_...``,
      which look like names) than a key, so its text is never shown.

    A key given twice keeps its last value.  Names are not validated here.
    """
    from dotenv.parser import parse_stream  # deferred: keep importing this module cheap

    src = _source(source)
    result: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise StoreFormatError(f"{src}: cannot parse line {_line_of(binding)}")
        if binding.key is None:
            continue  # blank line or comment
        if binding.value is None:
            # A bare line: even one shaped like a name (ghp_..., sk_live_...) is more
            # likely a pasted value than a key, so it is never echoed.
            raise UsageError(
                f"{src}: line {_line_of(binding)} has no '=' "
                "(expected NAME=value; the line is not shown, in case it is a value)"
            )
        result[binding.key] = binding.value
    return result


def _line_of(binding: Any) -> int:
    """The line a python-dotenv binding's statement starts on (1-based).

    The binding starts where the previous one ended, so the blank lines before
    the statement are skipped to report the statement's own line.
    """
    original = binding.original
    blank = _LEADING_SPACE_RE.match(original.string)
    skipped = len(_NEWLINE_RE.findall(blank.group(0))) if blank else 0
    return int(original.line) + skipped


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, in order, a repeated key kept.

    ``parse_json`` checks the top-level object's pairs itself: a key inside a
    nested object is part of a value and is never named in a message.
    """


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, _Pairs):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def _key_shown(key: str, position: int) -> tuple[str, str]:
    """(how a message names a JSON key, what it adds): the key itself when it is a
    valid secret name, else its entry number and why the key is not shown."""
    if is_valid_name(key):
        return key, ""
    return f"entry {position}", " (its key is not a valid name; not shown, in case it is a value)"


def parse_json(text: str, *, source: str = "<input>") -> dict[str, str]:
    """Parse a JSON object of string -> string.

    Invalid JSON, a top level other than an object, a value other than a
    string, or a key given twice raises StoreFormatError naming the source and
    the line and column, or the key when it is a valid secret name, else its
    entry number; never a value.  A leading BOM is ignored.
    """
    import json

    src = _source(source)
    try:
        data = json.loads(text.removeprefix("\ufeff"), object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        # Keep the message up to any ':' -- the pure-Python decoder appends
        # input characters after one (e.g. "Invalid \\escape: 'x'").
        what = exc.msg.split(":", 1)[0]
        raise StoreFormatError(
            f"{src}: invalid JSON at line {exc.lineno} column {exc.colno}: {what}"
        ) from None
    except (ValueError, RecursionError):
        # e.g. an integer longer than sys.get_int_max_str_digits(), or nesting
        # deeper than the recursion limit.
        raise StoreFormatError(f"{src}: invalid JSON") from None
    if not isinstance(data, _Pairs):
        raise StoreFormatError(
            f"{src}: expected a JSON object of names to strings, got {_json_type(data)}"
        )
    result: dict[str, str] = {}
    for position, (key, value) in enumerate(data, start=1):
        if key in result:
            shown, why = _key_shown(key, position)
            if shown == key:
                raise StoreFormatError(f"{src}: duplicate key {key}")
            raise StoreFormatError(f"{src}: {shown} repeats the key of an earlier entry{why}")
        if not isinstance(value, str):
            shown, why = _key_shown(key, position)
            raise StoreFormatError(
                f"{src}: value of {shown} must be a string, got {_json_type(value)}{why}"
            )
        result[key] = value
    return result


def parse_import(text: str, *, source: str, fmt: str | None = None) -> dict[str, str]:
    """Parse an import file as ``fmt`` (``dotenv`` or ``json``).

    With ``fmt`` None the format is detected: JSON if ``source`` ends in
    ``.json`` (any case) or the first non-blank character of ``text`` (after a
    BOM) is ``{``, else dotenv.
    """
    if fmt is None:
        stripped = text.removeprefix("\ufeff").lstrip()
        fmt = "json" if source.lower().endswith(".json") or stripped.startswith("{") else "dotenv"
    if fmt == "json":
        return parse_json(text, source=source)
    if fmt == "dotenv":
        return parse_dotenv(text, source=source)
    raise UsageError(
        f"unknown import format {_label(fmt)}; valid formats: {', '.join(IMPORT_FORMATS)}"
    )


# --------------------------------------------------------------------------- templates

_TEMPLATE_HINT = (
    "write {{ secret:NAME }} on one line, 'secret' in lowercase, no blank around the ':'; "
    "NAME is a letter, then letters, digits or '_' (at most 255); nothing was written"
)


def _template_problems(match: re.Match[str]) -> list[str]:
    """What is wrong with one ``_PLACEHOLDER`` match; empty for a valid reference.

    The body is described, never shown, unless it is a valid name (a name is
    not a value): a malformed reference may hold anything.
    """
    name = match.group("body").rstrip(" \t")
    problems = []
    if match.group("word") != "secret":
        problems.append("'secret' must be lowercase")
    if match.group("before"):
        problems.append("a blank before the ':'")
    if match.group("after"):
        problems.append("a blank after 'secret:'")
    if match.group("close") != "}}":
        problems.append("no '}}' closes it on the same line")
    elif not name:
        problems.append("no secret name")
    elif not is_valid_name(name):
        problems.append("not a valid secret name")
    elif problems:
        problems[-1] += f" (write {{{{ secret:{name} }}}})"
    return problems


def _template_references(text: str) -> list[tuple[re.Match[str], str]]:
    """Every reference in ``text`` as (match, name), in order: inject's one parser.

    Raises UsageError (exit 2) at the first malformed reference -- anything
    ``_PLACEHOLDER`` matches that is not exactly ``{{ secret:NAME }}`` -- with its
    line number and what is wrong, and the lines of any others.  Text that does
    not start like a reference (``{{ other }}``, ``{{ .Values.x }}``,
    ``{ secret:A }``) is not a reference and stays as it is.
    """
    found: list[tuple[re.Match[str], str]] = []
    bad: list[tuple[int, list[str]]] = []
    for match in _PLACEHOLDER.finditer(text):
        problems = _template_problems(match)
        if problems:
            bad.append((text.count("\n", 0, match.start()) + 1, problems))
        else:
            found.append((match, match.group("body").rstrip(" \t")))
    if bad:
        line, problems = bad[0]
        others = sorted({other for other, _ in bad[1:]} - {line})
        also = ""
        if others:
            listed = ", ".join(str(n) for n in others[:10]) + (", ..." if len(others) > 10 else "")
            also = f" (more on line{'s' if len(others) > 1 else ''} {listed})"
        elif len(bad) > 1:
            also = " (and more on the same line)"
        raise UsageError(
            f"template line {line}: malformed secret reference: {'; '.join(problems)}{also}",
            hint=_TEMPLATE_HINT,
        )
    return found


def template_references(text: str) -> list[str]:
    """Names referenced as ``{{ secret:NAME }}`` in ``text``, each once, in order.

    Raises UsageError for a malformed reference (``_template_references``).
    """
    return list(dict.fromkeys(name for _match, name in _template_references(text)))


def render_template(text: str, secrets: Mapping[str, str]) -> str:
    """Replace every ``{{ secret:NAME }}`` with the value of NAME.

    A reference is ``{{``, optional blanks (spaces, tabs), ``secret:NAME``,
    optional blanks, ``}}``, on one line: ``{{secret:NAME}}`` and
    ``{{ secret:NAME }}`` are the same.  Anything else that starts like one --
    ``{{``, blanks, ``secret`` in any case, blanks, ``:`` -- is an error
    (``{{ secret: NAME }}``, ``{{ SECRET:NAME }}``, ``{{ secret:db-password }}``,
    ``{{ secret:NAME }`` ...), never copied through.  Other text, ``{{ other }}``
    included, is copied unchanged; there is no escaping.  Inserted values are
    not scanned again, so a value containing ``{{ secret:X }}`` stays literal.

    Raises UsageError for a malformed reference, then NotFoundError listing
    every missing name once, in order of first appearance; both before
    replacing anything.
    """
    references = _template_references(text)
    missing = [name for name in dict.fromkeys(name for _m, name in references) if name not in secrets]
    if missing:
        raise NotFoundError(f"template references missing secrets: {', '.join(missing)}")
    parts: list[str] = []
    end = 0
    for match, name in references:
        parts += (text[end : match.start()], secrets[name])
        end = match.end()
    parts.append(text[end:])
    return "".join(parts)
