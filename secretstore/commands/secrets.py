"""set, get, list, delete and import: one scope's secrets.

How get reads a value (snapshot first, no prompt for a missing name) is
``layers.read_value``: every way of reading scopes lives in ``layers.py``.
"""

from __future__ import annotations

from secretstore import paths
from secretstore.errors import NotFoundError, NotRecipientError, UsageError
from secretstore.layers import not_a_recipient, require_store

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable

    from secretstore.identity import Identity
    from secretstore.store import Scope, Store

NEW, REPLACED, UNCHANGED = "new", "replaced", "unchanged"


# --- get ------------------------------------------------------------------------


def read_secret(store: Store, scope: Scope, name: str) -> str:
    """The value of ``name`` in ``scope`` (a checked name): ``layers.read_value`` with the user's cache."""
    from secretstore.layers import read_value

    return read_value(store, scope, name, paths.snapshot_dir())


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
