"""where, scopes, and the store's team id: what a new user asks first.

The team id lives in the store, in ``store.toml`` (``team_id = "..."``,
FORMAT.md "Store settings"), so every clone of a shared store agrees on it:
``init --team ID`` records it, and ``--id`` given for team (as Gradient's
command lines do) must then match it.
"""

from __future__ import annotations

import os

from secretstore import env as env_names
from secretstore.errors import StoreFormatError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable

    from secretstore.store import Store

SETTINGS_FILE = "store.toml"
SETTINGS_KEYS = ("team_id",)


# --- the team id ------------------------------------------------------------------


def read_team_id(store: Store) -> str | None:
    """The team id recorded in the store's ``store.toml``, or None."""
    from secretstore import fsio

    data = fsio.read_store_file(store.root, SETTINGS_FILE)
    if data is None:
        return None
    import tomllib

    where = os.path.join(store.root, SETTINGS_FILE)
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        raise StoreFormatError(f"{where}: not valid TOML") from None
    unknown = sorted(set(document) - set(SETTINGS_KEYS))
    if unknown:
        raise StoreFormatError(f"{where}: unknown key {unknown[0]!r}")
    team_id = document.get("team_id")
    if team_id is None:
        return None
    from secretstore.rules import is_valid_id

    if not isinstance(team_id, str) or not is_valid_id(team_id):
        raise StoreFormatError(f"{where}: team_id is not a valid id")
    return team_id


def record_team_id(store: Store, team_id: str) -> bool:
    """Record ``team_id`` in the store (created if needed); False when it was already recorded.

    A different id already recorded is an error: a store belongs to one team.
    """
    from secretstore import fsio
    from secretstore.rules import check_id

    check_id(team_id, "team")
    recorded = read_team_id(store) if os.path.isdir(store.root) else None
    if recorded == team_id:
        return False
    if recorded is not None:
        raise UsageError(
            f"the store {store.root} already belongs to team {recorded!r}",
            hint=f"edit {SETTINGS_FILE} in the store if the team id really changed",
        )
    fsio.ensure_dir(store.root)
    text = f'# secretstore store settings (FORMAT.md, "Store settings")\nteam_id = "{team_id}"\n'
    fsio.atomic_write(os.path.join(store.root, SETTINGS_FILE), text.encode("ascii"), mode=0o644)
    return True


def check_team_id(store: Store, given: str) -> None:
    """Gradient passes ``--id TEAM_ID`` for team: accept it, unless the store records another team."""
    from secretstore.rules import check_id

    check_id(given, "team")
    if not os.path.isdir(store.root):
        return
    recorded = read_team_id(store)
    if recorded is not None and recorded != given:
        raise UsageError(
            f"team id {given!r} does not match this store's team {recorded!r}",
            hint="drop --id for team, or pass --store for that team's store",
        )


# --- where, scopes -------------------------------------------------------------------


def where(store_flag: str | None = None, warn: Callable[[str], None] | None = None) -> dict[str, str | None]:
    """The store, identity, snapshot cache and audit log this user's commands would use, and where each
    comes from."""
    from secretstore import context, paths

    store, store_source = context.resolve_store(store_flag, warn=warn)
    if os.environ.get(env_names.KEY):
        identity, identity_source = None, f"${env_names.KEY}"
    else:
        identity = paths.identity_path()
        identity_source = f"${env_names.IDENTITY}" if os.environ.get(env_names.IDENTITY) else "default"
    cache = paths.snapshot_dir()
    if cache is None:
        cache_source = f"${env_names.CACHE}"
    else:
        cache_source = f"${env_names.CACHE_DIR}" if os.environ.get(env_names.CACHE_DIR) else "default"
    from secretstore import audit

    if audit.enabled():
        audit_log: str | None = audit.log_path(store)
        audit_source = f"${env_names.STATE_DIR}" if os.environ.get(env_names.STATE_DIR) else "default"
    else:
        audit_log, audit_source = None, f"${audit.ENV_AUDIT}"
    return {
        "store": store,
        "store_source": store_source,
        "store_exists": "yes" if os.path.isdir(store) else "no",
        "identity": identity,
        "identity_source": identity_source,
        "cache": cache,
        "cache_source": cache_source,
        "audit_log": audit_log,
        "audit_source": audit_source,
    }


def scope_counts(store: Store) -> list[tuple[str, str | None, int, int, str]]:
    """(entity, id, number of secrets, how many need rotating, why it was refused or "") for team
    and every project and cluster; needs no private key.

    Each file is verified as ``list`` verifies it (signature, whom you trust); one that is
    refused is listed with the reason instead of its counts, so one bad file hides nothing else.
    """
    from secretstore.errors import SecretStoreError
    from secretstore.layers import require_store
    from secretstore.store import TEAM, caller_public_key

    require_store(store)
    me = caller_public_key()
    rows: list[tuple[str, str | None, int, int, str]] = []
    found = store.scopes()
    if TEAM not in found:
        rows.append(("team", None, 0, 0, ""))
    for scope in found:
        try:
            file = store.load(scope)
            if file is not None:
                store.verify(scope, file, me)
        except SecretStoreError as exc:
            rows.append((scope.entity, scope.scope_id, 0, 0, exc.message))
            continue
        if file is None:
            rows.append((scope.entity, scope.scope_id, 0, 0, ""))
            continue
        live = file.live_names()
        rotate = sum(1 for entry in file.entries.values() if entry.rotate)  # deleted names too
        rows.append((scope.entity, scope.scope_id, len(live), rotate, ""))
    order = {"team": 0, "project": 1, "cluster": 2}
    rows.sort(key=lambda row: (order[row[0]], row[1] or ""))
    return rows
