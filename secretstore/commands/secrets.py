"""set, get, list, delete and import: one scope's secrets.

Reading a value (``get``)
-------------------------

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

from secretstore import paths
from secretstore.errors import NotFoundError, NotRecipientError, SecretStoreError, UsageError
from secretstore.layers import not_a_recipient, require_store

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable

    from secretstore.identity import Identity
    from secretstore.store import Scope, Store

NEW, REPLACED, UNCHANGED = "new", "replaced", "unchanged"


# --- get ------------------------------------------------------------------------


def _plain_identity() -> Identity | None:
    """The identity when it is a plain key, read without any prompt; else None."""
    from secretstore.identity import Identity, read_key

    try:
        key = read_key()
    except SecretStoreError:
        return None
    return key if isinstance(key, Identity) else None


def _from_snapshot(directory: str, identity: Identity, store: Store, scope: Scope, data: bytes) -> dict[str, str] | None:
    from secretstore.snapshot import Snapshots

    return Snapshots(directory, identity, store.root).load(scope, data)


def read_secret(store: Store, scope: Scope, name: str) -> str:
    """The value of ``name`` in ``scope`` (a checked name); see the module docstring for the order."""
    require_store(store)
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
    try:
        return store.unlock_file(scope, file, identity).get(name)
    except NotRecipientError:
        raise not_a_recipient(scope, identity) from None


# --- list -----------------------------------------------------------------------


def list_secrets(store: Store, scope: Scope) -> list[tuple[str, str]]:
    """(name, updated) of each secret in ``scope``, sorted; needs no key."""
    require_store(store)
    return store.list(scope)


def require_listed(store: Store, scope: Scope, name: str, purpose: str = "") -> None:
    """Say 'no such secret' before asking for a key that would not help."""
    require_store(store)
    if name not in {listed for listed, _updated in store.list(scope)}:
        raise NotFoundError(f"no {scope} secret {name!r}{purpose}")


# --- set, delete ---------------------------------------------------------------------


def set_secret(store: Store, scope: Scope, name: str, value: str, identity: Identity) -> str:
    """Store ``value``; NEW, REPLACED, or UNCHANGED when it already held exactly that (nothing written)."""
    unchanged: list[str] = []
    try:
        created = store.set_many(scope, {name: value}, identity, unchanged)
    except NotRecipientError:
        raise not_a_recipient(scope, identity) from None
    if unchanged:
        return UNCHANGED
    return NEW if created else REPLACED


def forget_snapshot(store: Store, scope: Scope, identity: Identity) -> None:
    """Drop ``scope``'s exec snapshot, so a deleted value does not stay in the cache."""
    directory = paths.snapshot_dir()
    if directory is not None:
        from secretstore.snapshot import Snapshots

        Snapshots(directory, identity, store.root).forget(scope)


def delete_secret(store: Store, scope: Scope, name: str, identity: Identity) -> None:
    try:
        store.delete(scope, name, identity)
    except NotRecipientError:
        raise not_a_recipient(scope, identity) from None
    forget_snapshot(store, scope, identity)


# --- import ----------------------------------------------------------------------------


def check_import(values: dict[str, str], source: str, *, skip_empty: bool = False) -> tuple[dict[str, str], int]:
    """(the values to set, how many empty ones were skipped); every name and value checked.

    An empty value is an error naming its entry, unless ``skip_empty``.
    """
    from secretstore.rules import check_value, is_valid_name

    kept: dict[str, str] = {}
    skipped = 0
    for position, (name, value) in enumerate(values.items(), start=1):
        if not is_valid_name(name):
            # Not echoed: in a mangled .env the "name" is often a pasted value.
            raise UsageError(
                f"{source}: entry {position} has an invalid secret name (not shown, in case it is a value)",
                hint="names are a letter, then letters, digits or '_' (^[A-Za-z][A-Za-z0-9_]*$), at most 255",
            )
        if value == "" and skip_empty:
            skipped += 1
            continue
        try:
            check_value(value)
        except UsageError as exc:
            hint = "pass --skip-empty to leave empty entries out" if value == "" else None
            raise UsageError(f"{source}: secret {name}: {exc.message}", hint=hint) from None
        kept[name] = value
    return kept, skipped


def plan_import(
    store: Store, scope: Scope, values: dict[str, str], get_identity: Callable[[], Identity]
) -> dict[str, str]:
    """name -> NEW, REPLACED or UNCHANGED for ``import --dry-run``; writes nothing.

    Telling "replaced" from "unchanged" means comparing values, so a scope
    that has a file is opened with the identity (``get_identity()``).
    """
    require_store(store)
    file = store.load(scope)
    if file is None:
        return dict.fromkeys(values, NEW)
    live = set(file.live_names())
    current: dict[str, str] = {}
    if live & set(values):
        identity = get_identity()
        try:
            current = store.unlock_file(scope, file, identity).values()
        except NotRecipientError:
            raise not_a_recipient(scope, identity) from None
    plan = {}
    for name, value in values.items():
        if name not in live:
            plan[name] = NEW
        else:
            plan[name] = UNCHANGED if current.get(name) == value else REPLACED
    return plan


def import_values(store: Store, scope: Scope, values: dict[str, str], identity: Identity) -> dict[str, str]:
    """Set every value in one atomic write; name -> NEW, REPLACED or UNCHANGED."""
    unchanged: list[str] = []
    try:
        created = set(store.set_many(scope, values, identity, unchanged))
    except NotRecipientError:
        raise not_a_recipient(scope, identity) from None
    kept = set(unchanged)
    return {
        name: NEW if name in created else UNCHANGED if name in kept else REPLACED for name in values
    }
