"""git setup / git merge-driver / doctor: sharing a store as a git checkout, and checking it."""

from __future__ import annotations

from secretstore.cli.common import identity_for_read, print_json, store_of, store_root_of
from secretstore.console import notice, print_lines

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args


def setup_command(args: Args) -> None:
    from secretstore import gitmerge

    root, source = store_root_of(args)
    changed, command = gitmerge.setup(root, default_store=source == "default")
    if changed:
        notice("wrote .gitattributes: commit it so every clone merges scope files entry by entry")
    print_lines([f"merge driver: {command}"])


def merge_driver_command(args: Args) -> None:
    from secretstore import gitmerge

    path = args.get("path") or "scope file"
    gitmerge.run_merge_driver(
        str(args.get("base")), str(args.get("ours")), str(args.get("theirs")), str(path), identity_for_read()
    )


def doctor_command(args: Args) -> int:
    from secretstore import doctor as diagnosis
    from secretstore.layers import require_store

    store = store_of(args)
    require_store(store)
    findings = diagnosis.diagnose(store, identity_for_read() if args.get("verify") else None)
    if args.get("as_json"):
        print_json([{"level": finding.level, "message": finding.message} for finding in findings])
    else:
        print_lines([f"{finding.level}: {finding.message}" for finding in findings])
    return 1 if any(finding.level == diagnosis.ERROR for finding in findings) else 0


def resolve_command(args: Args) -> None:
    """``git resolve ENTITY [--id ID] --name NAME (--ours | --theirs)``."""
    from secretstore import gitmerge
    from secretstore.cli.common import scope_of
    from secretstore.cli.secrets import resolve_name
    from secretstore.errors import UsageError
    from secretstore.layers import require_store

    ours, theirs = bool(args.get("ours")), bool(args.get("theirs"))
    if ours == theirs:
        raise UsageError("give exactly one of --ours, --theirs")
    store = store_of(args)
    require_store(store)
    scope = scope_of(args, store)
    name = resolve_name(args.get("name"))
    side = "ours" if ours else "theirs"
    identity = identity_for_read()
    remaining = gitmerge.resolve(store, scope, name, side, identity)
    from secretstore.commands.secrets import record

    record(store, "git resolve", scope, [name], identity, detail=f"--{side}")
    if remaining:
        print_lines([f"Resolved {scope.entity} secret '{name}' with {side}; still in conflict: {', '.join(remaining)}"])
    else:
        print_lines([f"Resolved {scope.entity} secret '{name}' with {side}; no conflict left"])
        notice(f"now run: git add {scope.relpath} (in the store), then commit")
