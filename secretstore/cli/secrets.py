"""set / list / get / delete: Gradient's command lines, with 'gradient' replaced by 'secretstore'.

Handlers: read the parsed line, prompt where Gradient prompts, call
``secretstore.commands.secrets``, print Gradient's messages.
"""

from __future__ import annotations

import os

from secretstore.cli.common import (
    identity_for_read,
    identity_for_write,
    my_key,
    print_json,
    prompt_line,
    read_bytes,
    scope_of,
    store_of,
    who,
)
from secretstore.commands import secrets
from secretstore.console import (
    notice,
    print_lines,
    print_table,
    stdin_is_tty,
    stdout_is_tty,
    warning_line,
    write_stdout,
)
from secretstore.errors import UsageError
from secretstore.rules import check_name, check_value, strip_one_newline

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args
    from secretstore.store import Scope

PROMPT_ATTEMPTS = 3
# A value is at most 64 KiB (rules.MAX_VALUE_BYTES): reading twice that lets check_value say by how much.
_VALUE_READ_BYTES = 128 * 1024


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not valid UTF-8") from None


def _from_stdin() -> str:
    raw, source = read_bytes(None, "value", _VALUE_READ_BYTES)
    text = strip_one_newline(_decode(raw, source))
    if not text:
        raise UsageError("secret value from stdin is empty")
    return check_value(text)


def _from_file(path: str) -> str:
    """A file's bytes exactly: a PEM or OpenSSH key keeps its trailing newline."""
    raw, source = read_bytes(path, "value file", _VALUE_READ_BYTES)
    text = _decode(raw, source)
    if not text:
        raise UsageError(f"secret value from {source} is empty")
    return check_value(text)


def read_value(value: str | None, value_file: str | None) -> str | None:
    """The value from --value, --value-file or piped stdin; None when it must be prompted for."""
    if value is not None and value_file is not None:
        raise UsageError("give --value or --value-file, not both")
    if value_file is not None:
        return _from_stdin() if value_file == "-" else _from_file(value_file)
    if value == "-" or value is None:
        return None if stdin_is_tty() else _from_stdin()
    return check_value(value)


def prompt_value(name: str) -> str:
    """A hidden prompt, asked twice; a mismatch asks again (up to three times)."""
    import getpass

    for _attempt in range(PROMPT_ATTEMPTS):
        try:
            first = getpass.getpass(f"Value for {name}: ")
            second = getpass.getpass(f"Value for {name} (again): ")
        except EOFError:
            raise UsageError("no value given") from None
        if first == second:
            return check_value(first)
        notice("the two values differ; try again")
    raise UsageError(f"the two values differed {PROMPT_ATTEMPTS} times; nothing was stored")


def resolve_name(name: object) -> str:
    """--name, else asked for on a terminal (Gradient prompts for it too)."""
    if not isinstance(name, str):
        if not stdin_is_tty():
            raise UsageError("missing --name")
        try:
            name = prompt_line("Name")
        except EOFError:
            raise UsageError("no name given") from None
    return check_name(name.strip())


def set_command(args: Args) -> None:
    store = store_of(args)
    scope = scope_of(args, store)
    name = resolve_name(args.get("name"))
    value = read_value(args.get("value"), args.get("value_file"))  # type: ignore[arg-type]
    identity = identity_for_write(store)
    if value is None:  # prompt after the passphrase, so a wrong one loses nothing typed
        value = prompt_value(name)
    outcome = secrets.set_secret(store, scope, name, value, identity)
    print_lines([f"Set {scope.entity} secret '{name}'"])
    from secretstore.loadervars import store_warning

    if (held_back := store_warning(name)) is not None:
        warning_line(held_back)
    if outcome == secrets.UNCHANGED:
        notice(f"{scope} secret '{name}' already had this value; nothing was written")


def list_command(args: Args) -> None:
    store = store_of(args)
    scope = scope_of(args, store)
    rows = secrets.list_secrets(store, scope)
    if args.get("as_json"):
        print_json([
            {"name": name, "entity": scope.entity, "id": scope.scope_id, "updated": updated,
             "writer": writer, "rotate_needed": rotate}
            for name, updated, writer, rotate in rows
        ])
        return
    if not rows:
        print_lines(["No data found"])
        if scope.scope_id is not None and not os.path.lexists(store.path(scope)):
            # Gradient's answer stays on stdout; a mistyped id must not look like an empty scope.
            warning_line(f"{scope} has no secrets in {store.root} ('secretstore scopes' lists the scopes)")
        return
    if args.get("long"):
        me = my_key()
        print_table(["Name", "Updated", "By", "Rotate needed"], [
            [name, updated, who(writer, store.label_of(writer) if writer else "", me), "yes" if rotate else "-"]
            for name, updated, writer, rotate in rows
        ])
    else:
        print_table(["Name"], [[name] for name, _updated, _writer, _rotate in rows])


def get_command(args: Args) -> None:
    store = store_of(args)
    scope = scope_of(args, store)
    name = resolve_name(args.get("name"))
    version = args.get("version")
    if isinstance(version, str):
        value = secrets.read_version(store, scope, name, version_number(version), identity_for_read())
    else:
        value = secrets.read_secret(store, scope, name)
    newline = b"\n" if stdout_is_tty() and not value.endswith("\n") else b""
    write_stdout(value.encode("utf-8") + newline)


def delete_command(args: Args) -> None:
    store = store_of(args)
    scope = scope_of(args, store)
    name = resolve_name(args.get("name"))
    from secretstore.layers import plain_identity, require_store

    identity = plain_identity()  # a key that needs no passphrase: nothing to ask for
    if identity is None:
        # say "no such secret" before a passphrase prompt that would not help
        secrets.require_listed(store, scope, name, " to delete")
        identity = identity_for_read()
    require_store(store)
    purge = bool(args.get("purge"))
    secrets.delete_secret(store, scope, name, identity, purge=purge)
    if purge:
        print_lines([f"Deleted {scope.entity} secret '{name}' and every earlier version of it"])
        notice("git history, and anyone who read it, may still hold old encrypted copies: change the value at its source")
    else:
        print_lines([f"Deleted {scope.entity} secret '{name}'"])
        notice(f"'secretstore undelete {scope_words(scope)} --name {name}' brings it back while its history lasts")


def version_number(text: str, option: str = "--version") -> int:
    """--version K / --to K: 0 is the current value, 1 the one before it, and so on."""
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"{option} takes a number (0: the current value, 1: the one before): not {text!r}")
    return int(text)


def scope_words(scope: Scope) -> str:
    return scope.entity if scope.scope_id is None else f"{scope.entity} --id {scope.scope_id}"
