"""``secretstore get`` without typer: a hand-written parser, and the one implementation of get.

``get`` is what scripts put in ``$(...)``, so it pays for start-up on every
call; typer's import and its per-parameter set-up cost far more than reading
one value. ``secretstore.main`` sends ``get`` and ``secrets get`` here. The
typer command in ``secretstore/cli/secrets.py`` stays the documented
interface: ``--help``, a missing ``--name`` (typer prompts for it), an
unknown option, a missing or invalid ENTITY, an extra argument, and any
other line this parser does not understand exactly make ``parse`` return
None, and typer takes the line, so usage errors, prompts and help come from
one definition. ``tests/test_fastget.py`` checks that the options below are
exactly the ones the typer command declares.

Both parsers end in ``print_secret``: one implementation of what get does.

Reading the value
-----------------

A name that does not exist is reported before the identity is asked for: a
passphrase typed for nothing is a bad trade, and so is "no identity" when
the real answer is "no such secret". The slow order is: parse the names in
the scope file (no key needed), check the name, resolve the identity (which
may prompt for a passphrase), verify the whole file, decrypt the value.

Exec's encrypted snapshot (``secretstore/snapshot.py``) holds the verified
values of a scope file's exact bytes, so when it opens, its keys are the
file's live names and the value can be taken from it, skipping both the
parse and the verification (at 10,000 secrets most of the cost). Opening it
needs the identity, though. So the snapshot is tried first only when the
identity is a plain key, one that ``$SECRETSTORE_KEY`` or the identity file
gives without a passphrase: reading it never prompts, and a missing, loose,
malformed or passphrase-protected key is not an error here but simply "no
snapshot first", after which the slow order above runs and reports whatever
is wrong at the same point as before. With a protected key, the name is
checked first, and the snapshot is tried after the passphrase, in place of
the verification. So a name that does not exist never costs a prompt.

A miss is read the normal way and writes no snapshot: writing one means
decrypting every value of the scope to read one.
"""

from __future__ import annotations

from secretstore.console import (
    disable_core_dumps,
    run_reporting_errors,
    stdout_is_tty,
    write_stdout,
)
from secretstore.errors import NotFoundError, SecretStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Sequence

    from secretstore.identity import Identity
    from secretstore.snapshot import Snapshots
    from secretstore.store import Scope, Store

# Options of ``secretstore get``: long name -> attribute of GetOptions.
VALUE_OPTIONS = {
    "--id": "scope_id",
    "--name": "name",
    "--store": "store",
}
# The values of the typer command's ENTITY (``cli.common.Entity``), matched exactly as typer does.
ENTITIES = ("team", "project", "cluster")
# ``secretstore get ...`` and Gradient's ``secretstore secrets get ...``.
COMMANDS = (["get"], ["secrets", "get"])


class GetOptions:
    """A parsed ``secretstore get`` command line."""

    __slots__ = ("entity", "name", "scope_id", "store")

    def __init__(
        self, entity: str = "", *, scope_id: str | None = None, name: str | None = None, store: str | None = None
    ) -> None:
        self.entity = entity
        self.scope_id = scope_id
        self.name = name
        self.store = store

    def __repr__(self) -> str:
        fields = ", ".join(f"{field}={getattr(self, field)!r}" for field in self.__slots__)
        return f"GetOptions({fields})"


def split_command(argv: Sequence[str]) -> tuple[str | None, list[str]] | None:
    """(global --store, arguments after ``get``) when ``argv`` is a get command, else None."""
    from secretstore.fastexec import strip_global_store

    split = strip_global_store(argv)
    if split is None:
        return None
    store, args = split
    for command in COMMANDS:
        if args[: len(command)] == command:
            return store, args[len(command) :]
    return None


def parse(args: Sequence[str], global_store: str | None = None) -> GetOptions | None:
    """Arguments after ``get``, or None when typer should handle the line.

    As in the typer command (click, interspersed arguments allowed), options
    and ENTITY come in any order, ``--opt value`` or ``--opt=value``, the
    last of a repeated option wins, and ``--`` ends the options. A command
    ``--store`` beats the global one, as ``cli.common.open_store`` does.
    """
    options = GetOptions(store=global_store)
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positional.extend(args[index:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        option, sep, value = arg.partition("=")
        if option not in VALUE_OPTIONS:
            return None  # --help, -h, unknown or misspelt: typer says what is wrong
        if not sep:
            if index >= len(args):
                return None
            value = args[index]
            index += 1
        if not value or value.startswith("-"):
            return None
        setattr(options, VALUE_OPTIONS[option], value)
    if len(positional) != 1 or positional[0] not in ENTITIES or options.name is None:
        return None  # no ENTITY, an extra argument, a bad ENTITY, or typer's --name prompt
    options.entity = positional[0]
    return options


# --- reading -------------------------------------------------------------------


def _plain_identity() -> Identity | None:
    """The identity when it is a plain key, read without any prompt; else None.

    The same identity ``resolve_identity(create=False)`` returns for a plain
    key. Any problem (no key, a loose or malformed file) is None here:
    ``read_secret`` reports it later, at the point where it always did.
    """
    from secretstore.identity import Identity, read_key

    try:
        key = read_key()
    except SecretStoreError:
        return None
    return key if isinstance(key, Identity) else None


def _snapshots(directory: str, identity: Identity, store: Store) -> Snapshots:
    from secretstore.snapshot import Snapshots

    return Snapshots(directory, identity, store.root)


def read_secret(store: Store, scope: Scope, name: str) -> str:
    """The value of ``name`` in ``scope`` (a checked name); see the module docstring for the order."""
    from secretstore import paths

    data = store.read_bytes(scope)
    if data is None:
        raise NotFoundError(f"no {scope} secret {name!r}")
    directory = paths.snapshot_dir()
    identity = None
    if directory is not None:
        identity = _plain_identity()
        if identity is not None:
            values = store.from_snapshot(scope, data, identity, _snapshots(directory, identity, store))
            if values is not None:
                if name not in values:
                    raise NotFoundError(f"no {scope} secret {name!r}")
                return values[name]
    file = store.parse(scope, data)
    entry = file.entries.get(name)
    if entry is None or entry.current is None:
        raise NotFoundError(f"no {scope} secret {name!r}")
    if identity is None:
        from secretstore.identity import resolve_identity

        identity, _created = resolve_identity(create=False)  # may ask for a passphrase
        if directory is not None:
            values = store.from_snapshot(scope, data, identity, _snapshots(directory, identity, store))
            if values is not None and name in values:
                return values[name]
    return store.unlock_file(scope, file, identity).get(name)


def print_secret(store: Store, scope: Scope, name: str) -> None:
    """Do what ``secretstore get`` does: the value exactly, plus a newline only on a terminal."""
    value = read_secret(store, scope, name)
    newline = b"\n" if stdout_is_tty() and not value.endswith("\n") else b""
    write_stdout(value.encode("utf-8") + newline)


def resolve(options: GetOptions) -> tuple[Store, Scope, str]:
    """(store, scope, name) for ``options``, validated in the typer command's order."""
    from secretstore import paths
    from secretstore.rules import check_name
    from secretstore.store import Scope, Store

    scope = Scope.of(options.entity, options.scope_id)
    name = check_name((options.name or "").strip())
    return Store(paths.store_dir(options.store)), scope, name


def main(argv: Sequence[str]) -> int | None:
    """The fast path: an exit status, or None when the typer CLI should take ``argv``.

    Errors are reported as ``cli.run`` reports them, with the same exit codes.
    """
    split = split_command(argv)
    if split is None:
        return None
    options = parse(split[1], split[0])
    if options is None:
        return None
    disable_core_dumps()
    return run_reporting_errors(lambda: print_secret(*resolve(options)))
