"""What ``secretstore get`` does, in a module that does not import typer.

The typer command in ``secretstore/cli/secrets.py`` parses the line and calls
``print_secret``.

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

import os
import sys

from secretstore.console import write_stdout
from secretstore.errors import NotFoundError, SecretStoreError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.identity import Identity
    from secretstore.store import Scope, Store


# --- reading -------------------------------------------------------------------


def _plain_identity() -> Identity | None:
    """The identity when it is a plain key, read without any prompt; else None.

    The same identity ``resolve_identity(create=False)`` returns for a plain
    key. Any problem (no key, a loose or malformed file) is None here:
    ``read_secret`` reports it later, at the point where it always did.
    """
    from secretstore import paths
    from secretstore.identity import Identity, key_from_env, read_key_file

    try:
        key = key_from_env()
        if key is None:
            key = read_key_file(paths.identity_path())
    except SecretStoreError:
        return None
    return key if isinstance(key, Identity) else None


def _from_snapshot(
    directory: str, identity: Identity, store: Store, scope: Scope, data: bytes
) -> dict[str, str] | None:
    from secretstore.snapshot import Snapshots

    return Snapshots(directory, identity, store.root).load(scope, data)


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
            values = _from_snapshot(directory, identity, store, scope, data)
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
            values = _from_snapshot(directory, identity, store, scope, data)
            if values is not None and name in values:
                return values[name]
    return store.unlock_file(scope, file, identity).get(name)


def stdout_is_tty() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):
        return False


def print_secret(store: Store, scope: Scope, name: str) -> None:
    """Do what ``secretstore get`` does: the value exactly, plus a newline only on a terminal."""
    value = read_secret(store, scope, name)
    newline = b"\n" if stdout_is_tty() and not value.endswith("\n") else b""
    write_stdout(value.encode("utf-8") + newline)

