"""export / import / inject: the merged set out as dotenv, JSON, shell or k8s; files in; templates.

The formats themselves are pure functions in ``secretstore.formats``; the
merged set comes from ``secretstore.commands.exec`` (the same pipeline as
exec); import's use case is in ``secretstore.commands.secrets``.
"""

from __future__ import annotations

import os

from secretstore.cli.common import (
    context_of,
    identity_for_read,
    identity_for_write,
    read_text,
    scope_of,
    store_of,
)
from secretstore.commands import exec as execution
from secretstore.commands import secrets
from secretstore.console import notice, print_lines, warning_line, write_stdout
from secretstore.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args

_VERBS = {secrets.NEW: "set", secrets.REPLACED: "replace", secrets.UNCHANGED: "keep"}


def _format_choice(value: object, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise UsageError(f"unknown {what} format {value!r}: choose one of {', '.join(allowed)}")
    return str(value)


def _merged(args: Args, command: str) -> dict[str, str]:
    """The merged set; export (``allow_vars`` declared) leaves out what exec would not inject."""
    exporting = command == "export"
    raw = args.get("allow_vars")
    allow_vars = ([str(name) for name in raw] if isinstance(raw, list) else []) if exporting else None
    return execution.merged_values(
        context_of(args, allow_vars=exporting), strict=bool(args.get("strict")), warn=warning_line,
        command=command, allow_vars=allow_vars,
    )


def export_command(args: Args) -> None:
    from secretstore.formats import EXPORT_FORMATS, render

    fmt = _format_choice(args.get("fmt"), EXPORT_FORMATS, "export") or "dotenv"
    text = render(_merged(args, "export"), fmt, k8s_name=str(args.get("k8s_name")), k8s_namespace=args.get("namespace"))  # type: ignore[arg-type]
    write_stdout(text.encode("utf-8"))


def import_command(args: Args) -> None:
    from secretstore.formats import IMPORT_FORMATS, parse_import

    store = store_of(args)
    scope = scope_of(args, store)
    fmt = _format_choice(args.get("fmt"), IMPORT_FORMATS, "import")
    text, source = read_text(args.get("file"), "file")  # type: ignore[arg-type]
    parsed = parse_import(text, source=source, fmt=fmt)
    values, skipped = secrets.check_import(parsed, source, skip_empty=bool(args.get("skip_empty")))
    from secretstore.loadervars import store_warning

    for name in values:
        if (held_back := store_warning(name)) is not None:
            warning_line(held_back)
    if not values:
        # Refused, not a quiet success: an empty input is most often a failed command upstream
        # (`vault-dump | secretstore import ... -`), and exit 0 would hide that.
        what = (f"every entry of {source} has an empty value, and --skip-empty left them all out" if skipped
                else f"{source} holds no secrets")
        raise UsageError(f"nothing to import: {what}",
                         hint="nothing was written; if another command fed this input, check that it succeeded")
    if skipped:
        notice(f"skipped {skipped} empty value(s) from {source}")
    if args.get("dry_run"):
        plan = secrets.plan_import(store, scope, values, identity_for_read)
        print_lines([f"Would {_VERBS[plan[name]]} {scope.entity} secret '{name}' ({plan[name]})" for name in values])
        return
    outcome = secrets.import_values(store, scope, values, identity_for_write(store))
    lines = [f"Set {scope.entity} secret '{name}'" for name in values if outcome[name] != secrets.UNCHANGED]
    kept = sum(1 for name in values if outcome[name] == secrets.UNCHANGED)
    print_lines(lines)
    if kept:
        notice(f"{kept} secret(s) already had these values and were left as they were")


def inject_command(args: Args) -> None:
    from secretstore import fsio
    from secretstore.formats import render_template, template_references

    template = args.get("template")
    if not isinstance(template, str):
        raise UsageError("inject needs --in TEMPLATE ('-' for stdin)")
    output = args.get("output")
    target = None if output is None or output == "-" else output_target(str(output), "--out")
    text, _source = read_text(template, "template")
    template_references(text)  # a malformed reference is refused before any secret is read (or logged)
    rendered = render_template(text, _merged(args, "inject")).encode("utf-8")
    if target is None:
        write_stdout(rendered)
        return
    fsio.atomic_write(target, rendered)


def output_target(path: str, option: str) -> str:
    """The absolute path to write ``path`` to, checked before any secret is read.

    A missing directory is refused, not created: a typo in ``-o conf/app.yaml``
    would otherwise leave a 0600 file of secrets somewhere nobody looks (op inject
    refuses too)."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise UsageError(f"{option}: {path} is a directory; give a file name")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise UsageError(f"{option}: the directory {os.path.dirname(path) or parent} does not exist",
                         hint="create it first: secretstore does not create directories for an output file")
    return target
