"""history / rollback / undelete / audit: nothing a user does is irreversible or untraceable."""

from __future__ import annotations

from secretstore.cli.common import identity_for_read, my_key, print_json, scope_of, store_of, who
from secretstore.cli.secrets import resolve_name, scope_words, version_number
from secretstore.commands import secrets
from secretstore.console import print_lines, print_table
from secretstore.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Mapping

    from secretstore.cli.spec import Args


def history_command(args: Args) -> None:
    store = store_of(args)
    scope = scope_of(args, store)
    name = resolve_name(args.get("name"))
    found = secrets.versions(store, scope, name)
    rows = [
        {"version": v.number, "state": v.state, "updated": v.updated, "writer": v.writer,
         "label": store.label_of(v.writer) if v.writer else ""}
        for v in found
    ]
    if args.get("as_json"):
        print_json(rows)
        return
    me = my_key()
    print_table(
        ["Version", "State", "Updated", "By"],
        [[str(r["version"]), str(r["state"]), str(r["updated"]), _who(r, me)] for r in rows],
    )


def _who(row: Mapping[str, object], me: str) -> str:
    return who(str(row["writer"] or ""), str(row["label"] or ""), me)


def rollback_command(args: Args) -> None:
    store = store_of(args)
    scope = scope_of(args, store)
    name = resolve_name(args.get("name"))
    to = args.get("to")
    if to is None:
        raise UsageError("rollback needs --to K, the version to bring back (1: the one before the current value)",
                         hint=f"list the versions with: secretstore history {scope_words(scope)} --name {name}")
    number = version_number(str(to), "--to")
    secrets.rollback(store, scope, name, number, identity_for_read())
    print_lines([f"Rolled {scope.entity} secret '{name}' back to version {number}, as a new version"])


def undelete_command(args: Args) -> None:
    store = store_of(args)
    scope = scope_of(args, store)
    name = resolve_name(args.get("name"))
    secrets.undelete(store, scope, name, identity_for_read())
    print_lines([f"Undeleted {scope.entity} secret '{name}'"])


def audit_command(args: Args) -> int:
    from secretstore import audit
    from secretstore.layers import require_store
    from secretstore.rules import check_name

    store = store_of(args)
    require_store(store)
    wanted = args.get("name")
    if isinstance(wanted, str):
        check_name(wanted)
    if args.get("verify"):
        problems = audit.verify(store.root)
        files = audit.generations(store.root)
        if args.get("as_json"):
            print_json({"ok": not problems, "files": len(files), "problems": problems})
        elif problems:
            print_lines(problems)
        else:
            print_lines([f"ok: the audit log's chain is intact ({len(files)} file(s))" if files
                         else "ok: no audit log yet"])
        return 1 if problems else 0
    since = args.get("since")
    bound = audit.since_bound(since) if isinstance(since, str) else None
    if isinstance(since, str) and bound is None:
        raise UsageError(
            "--since takes a UTC date or time (2026-12-01, 2026-12-01T09:00), a duration back from now "
            f"(30m, 2h, 7d) or today or yesterday: not {since!r}"
        )
    rows: list[dict[str, object]] = []
    damaged = 0
    for entry in audit.read(store.root):
        fields = entry.fields
        if fields is None:
            damaged += 1
            continue
        if fields.get("command") == "rotated":
            continue
        if bound is not None and str(fields.get("time", "")) < bound:
            continue
        if isinstance(wanted, str) and not audit.mentions(fields, wanted):
            continue
        rows.append({k: v for k, v in fields.items() if k != "prev"})
    if damaged:
        from secretstore.console import warning_line

        warning_line(f"{damaged} damaged line(s) of the audit log were skipped; run 'secretstore audit --verify'")
    if args.get("as_json"):
        print_json(rows)
        return 0
    if not rows:
        print_lines(["No data found"])
        return 0
    me = my_key()
    print_table(
        ["Time", "Command", "Scope", "Names", "By", "Detail"],
        [[str(r.get("time", "")), str(r.get("command", "")), str(r.get("scope", "")),
          _names_cell(r),
          _who({"writer": r.get("key") or "", "label": r.get("label") or ""}, me) if r.get("key")
          else str(r.get("label") or ""),
          str(r.get("detail") or "")]
         for r in rows],
    )
    return 0


def _names(row: Mapping[str, object]) -> list[str]:
    names = row.get("names")
    return [str(name) for name in names] if isinstance(names, list) else []


def _names_cell(row: Mapping[str, object]) -> str:
    if row.get("names_omitted"):
        count = row.get("names_count")
        return f"{count:,} names (too many to list; audit --json has their digest)" if isinstance(count, int) \
            else "names not listed"
    return ", ".join(_names(row))
