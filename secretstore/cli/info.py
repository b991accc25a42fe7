"""where / scopes: which store, identity and cache are in use, and what the store holds."""

from __future__ import annotations

from secretstore.cli.common import print_json, store_of
from secretstore.console import print_lines, print_table, warning_line

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args


def where_command(args: Args) -> None:
    from secretstore.commands.info import where

    store = args.get("store")
    found = where(store if isinstance(store, str) else None, warn=warning_line)
    if args.get("as_json"):
        print_json(found)
        return
    missing = "" if found["store_exists"] == "yes" else ", does not exist yet"
    identity = found["identity"] or "(the key in the environment)"
    cache = found["cache"] or "off"
    print_lines([
        f"store: {found['store']} (from {found['store_source']}{missing})",
        f"identity: {identity} (from {found['identity_source']})",
        f"cache: {cache} (from {found['cache_source']})",
        f"audit log: {found['audit_log'] or 'off'} (from {found['audit_source']})",
    ])


def scopes_command(args: Args) -> None:
    from secretstore.commands.info import scope_counts

    rows = scope_counts(store_of(args))
    if args.get("as_json"):
        print_json([
            {"entity": entity, "id": scope_id, "secrets": count, "rotate_needed": rotate, "refused": problem or None}
            for entity, scope_id, count, rotate, problem in rows
        ])
        return
    print_table(
        ["Entity", "Id", "Secrets", "Rotate needed"],
        [[entity, scope_id or "-", "refused" if problem else str(count), str(rotate) if rotate else "-"]
         for entity, scope_id, count, rotate, problem in rows],
    )
    for entity, scope_id, _count, _rotate, problem in rows:
        if problem:
            warning_line(f"{entity if scope_id is None else f'{entity} {scope_id}'}: {problem}")
