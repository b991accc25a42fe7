"""Read the scopes of a context once: the one reading pipeline of the merged set.

``exec``, ``export``, ``inject`` and ``get`` (and the web page) read through
here, so every reader treats a missing store, a missing scope, a scope you
cannot open and a snapshot the same way:

- a store directory that does not exist is an error naming it (reading never
  creates one);
- a named project or cluster with no scope file is a warning (a typo in an id
  would otherwise give a silent, empty run), an error under ``strict``;
- a scope the identity is not a recipient of is skipped with a warning that
  names the least privilege to ask for, an error under ``strict``;
- a scope file whose exact bytes were verified before is read from its
  encrypted snapshot (``snapshot.py``), and one verified now gets a snapshot.

One public-key operation per scope file, never per value. Imports nothing
heavy: it is on exec's start-up path.

Reading one value (``get``)
---------------------------

A name that does not exist is reported before the identity is asked for: a
passphrase typed for nothing is a bad trade, and so is "no identity" when
the real answer is "no such secret". The slow order is: parse the names in
the scope file (no key needed), check the name (a name that is not there is
reported only once the file's signature, writer and version are checked, with
the public key alone: never "no such secret" from a forged or rolled-back
file), resolve the identity (which may prompt for a passphrase), verify the
whole file, decrypt the value.

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

A miss is read in full, every value decrypted (FORMAT.md: a file with a value
that does not decrypt gives no value), and then kept as a snapshot, so the
next ``get`` or ``exec`` of the same bytes costs one AEAD call.
"""

from __future__ import annotations

import os

from secretstore.errors import NotFoundError, NotRecipientError, SecretStoreError, StoreMissingError
from secretstore.store import caller_public_key, least_privilege_hint

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable

    from secretstore.context import Context
    from secretstore.identity import Identity
    from secretstore.snapshot import Snapshots
    from secretstore.store import Scope, Store

    Layers = list[tuple[Scope, dict[str, str]]]


def require_store(store: Store) -> None:
    """A missing store directory is an error that names it: reading commands never create one."""
    if not os.path.isdir(store.root):
        raise StoreMissingError(
            f"no store at {store.root}",
            hint=("check --store / $SECRETSTORE_DIR (or 'secretstore where'); 'secretstore set' creates the store "
                  "with its first secret, 'secretstore init --team ID' an empty one"),
        )


def _skip_message(scope: Scope, identity: Identity) -> str:
    return (
        f"skipped {scope}: not a recipient "
        f"({least_privilege_hint(scope, identity.public_text)})"
    )


def load_layers(
    store: Store,
    context: Context,
    get_identity: Callable[[], Identity],
    *,
    strict: bool = False,
    snapshot_dir: str | None = None,
) -> tuple[Layers, list[str]]:
    """Every value of the context's scopes (lowest precedence first), and warnings.

    The identity is asked for only when some scope has a file. ``strict``
    turns each warning (a named scope with no file, a scope you cannot open)
    into an error; it concerns only the scopes the context wants, so a run
    without team never fails for team.
    """
    require_store(store)
    layers: Layers = []
    warnings: list[str] = []
    identity: Identity | None = None
    snapshots: Snapshots | None = None
    for scope in context.scopes():
        # With the cache on, only the head is read first: a snapshot of it needs no more.
        data = store.read_current(scope) if snapshot_dir is None else store.read_head(scope)
        if data is None:
            if scope.scope_id is not None:
                source = context.project_source if scope.entity == "project" else context.cluster_source
                message = f"{scope} has no secrets in {store.root}" + (f" (from {source})" if source else "")
                if strict:
                    raise NotFoundError(message, hint="check the id ('secretstore scopes' lists them)")
                warnings.append(message)
            layers.append((scope, {}))
            continue
        if identity is None:
            identity = get_identity()
            if snapshot_dir is not None:
                from secretstore.snapshot import Snapshots

                snapshots = Snapshots(snapshot_dir, identity, store.root)
        try:
            values = store.read_values(scope, data, identity, snapshots, head_only=snapshot_dir is not None,
                                       body_only=snapshot_dir is None)
        except NotRecipientError:
            if strict:
                raise
            warnings.append(_skip_message(scope, identity))
            values = {}
        layers.append((scope, values))
    return layers, warnings


# --- one value (get) ---------------------------------------------------------------


def plain_identity() -> Identity | None:
    """The identity when it is a plain key, read without any prompt; else None."""
    from secretstore.identity import Identity, read_key

    try:
        key = read_key()
    except SecretStoreError:
        return None
    return key if isinstance(key, Identity) else None


def _snapshots(directory: str, identity: Identity, store: Store) -> Snapshots:
    from secretstore.snapshot import Snapshots

    return Snapshots(directory, identity, store.root)


def read_value(store: Store, scope: Scope, name: str, directory: str | None) -> str:
    """The value of ``name`` in ``scope`` (a checked name), what ``get`` prints.

    ``directory`` is the snapshot cache (None: off). The order is in the module
    docstring. A miss verifies the whole file, every value included (a file with
    a value that does not decrypt gives no value at all), and keeps a snapshot.
    """
    require_store(store)
    identity = plain_identity() if directory is not None else None
    if identity is not None and directory is not None:
        head = store.read_head(scope)
        if head is None:
            raise NotFoundError(f"no {scope} secret {name!r}")
        values = store.from_snapshot(scope, head, identity, _snapshots(directory, identity, store))
        if values is not None:
            if name not in values:
                raise NotFoundError(f"no {scope} secret {name!r}")
            return values[name]
    data = store.read_current(scope)
    if data is None:
        raise NotFoundError(f"no {scope} secret {name!r}")
    file = store.parse(scope, data, body_only=True)
    entry = file.entries.get(name)
    if entry is None or entry.current is None:
        store.verify(scope, file, caller_public_key())  # its refusal, if any, is the answer
        raise NotFoundError(f"no {scope} secret {name!r}")
    if identity is None:
        from secretstore.identity import resolve_identity

        identity, _created = resolve_identity(create=False)  # may ask for a passphrase
    snapshots = None if directory is None else _snapshots(directory, identity, store)
    return store.read_values(scope, data, identity, snapshots, file=file)[name]
