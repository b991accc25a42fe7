"""set, get, list, delete and import: one scope's secrets.

How get reads a value (snapshot first, no prompt for a missing name) is
``layers.read_value``: every way of reading scopes lives in ``layers.py``.
"""

from __future__ import annotations

from secretstore import paths
from secretstore.errors import NotFoundError, SecretStoreError, UsageError
from secretstore.layers import require_store

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable

    from secretstore.identity import Identity
    from secretstore.store import Scope, Store, VersionInfo

NEW, REPLACED, UNCHANGED = "new", "replaced", "unchanged"


# --- get ------------------------------------------------------------------------


def read_secret(store: Store, scope: Scope, name: str) -> str:
    """The value of ``name`` in ``scope`` (a checked name): ``layers.read_value`` with the user's cache."""
    from secretstore.layers import read_value

    value = read_value(store, scope, name, paths.snapshot_dir())
    record(store, "get", scope, [name])
    return value


def record(store: Store, command: str, scope: Scope | None, names: list[str], identity: Identity | None = None,
           detail: str = "") -> None:
    """One line in the audit log (``audit.py``): who read or changed which names; never a value."""
    from secretstore import audit

    if not audit.enabled():
        return
    record_scopes(store, command, [(scope, names)], identity, detail)


def record_scopes(store: Store, command: str, scopes: list[tuple[Scope | None, list[str]]],
                  identity: Identity | None = None, detail: str = "") -> None:
    """``record`` for several scopes at once: one line each, written under one lock."""
    from secretstore import audit

    if not audit.enabled() or not scopes:
        return
    key = identity.public_text if identity is not None else _public_text()
    audit.record_many(store.root, command, [("" if scope is None else str(scope), names) for scope, names in scopes],
                      key=key, label=store.label_of(key), detail=detail)


def _public_text() -> str:
    from secretstore.store import caller_public_key

    try:
        me = caller_public_key()
    except SecretStoreError:  # the log says who as well as it can; it never fails the command
        return ""
    return "" if me is None else me.text


# --- list -----------------------------------------------------------------------


def list_secrets(store: Store, scope: Scope) -> list[tuple[str, str, str | None, bool]]:
    """(name, updated, writer, rotate needed) of each secret in ``scope``, sorted; needs no key.

    Through list's cache (``snapshot.Listings``) when the store has one (``cli.common.store_of``)."""
    require_store(store)
    return store.listing(scope)


def require_listed(store: Store, scope: Scope, name: str, purpose: str = "") -> None:
    """Say 'no such secret' before asking for a key that would not help."""
    require_store(store)
    if name not in {row[0] for row in store.listing(scope)}:
        raise NotFoundError(f"no {scope} secret {name!r}{purpose}")


# --- set, delete ---------------------------------------------------------------------


def set_secret(store: Store, scope: Scope, name: str, value: str, identity: Identity) -> str:
    """Store ``value``; NEW, REPLACED, or UNCHANGED when it already held exactly that (nothing written)."""
    unchanged: list[str] = []
    created = store.set_many(scope, {name: value}, identity, unchanged)
    if unchanged:
        return UNCHANGED
    record(store, "set", scope, [name], identity)
    return NEW if created else REPLACED


def forget_snapshot(store: Store, scope: Scope, identity: Identity) -> None:
    """Drop ``scope``'s exec snapshot, so a deleted value does not stay in the cache."""
    directory = paths.snapshot_dir()
    if directory is not None:
        from secretstore.snapshot import Snapshots

        Snapshots(directory, identity, store.root).forget(scope)


def delete_secret(store: Store, scope: Scope, name: str, identity: Identity, *, purge: bool = False) -> None:
    """Delete ``name`` (undelete brings it back while its history lasts); ``purge``: every version too."""
    store.delete(scope, name, identity, purge=purge)
    forget_snapshot(store, scope, identity)
    record(store, "delete --purge" if purge else "delete", scope, [name], identity)


# --- history ---------------------------------------------------------------------------


def versions(store: Store, scope: Scope, name: str) -> list[VersionInfo]:
    require_store(store)
    return store.versions(scope, name)


def read_version(store: Store, scope: Scope, name: str, number: int, identity: Identity) -> str:
    require_store(store)
    value = store.get_version(scope, name, number, identity)
    record(store, "get --version", scope, [name], identity, detail=f"version {number}")
    return value


def rollback(store: Store, scope: Scope, name: str, number: int, identity: Identity, *,
             expected: str | None = None) -> None:
    """``expected``: the ``store.version_tag`` of the version meant (the web page's confirmation),
    checked by ``Store.rollback`` under the store lock; a mismatch writes and logs nothing."""
    require_store(store)
    store.rollback(scope, name, number, identity, expected=expected)
    forget_snapshot(store, scope, identity)
    record(store, "rollback", scope, [name], identity, detail=f"to version {number}")


def undelete(store: Store, scope: Scope, name: str, identity: Identity, *, expected: str | None = None) -> None:
    require_store(store)
    store.undelete(scope, name, identity, expected=expected)
    forget_snapshot(store, scope, identity)
    record(store, "undelete", scope, [name], identity)


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
        current = store.unlock_file(scope, file, get_identity()).values()
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
    created = set(store.set_many(scope, values, identity, unchanged))
    kept = set(unchanged)
    if set(values) - kept:
        record(store, "import", scope, sorted(set(values) - kept), identity)
    return {
        name: NEW if name in created else UNCHANGED if name in kept else REPLACED for name in values
    }
