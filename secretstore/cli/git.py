"""git setup / git merge-driver / doctor: sharing a store as a git checkout, and checking it."""

from __future__ import annotations

from secretstore.cli.common import identity_for_read, print_json, store_of
from secretstore.console import notice, print_lines

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args


def setup_command(args: Args) -> None:
    from secretstore import gitmerge

    store = store_of(args)
    changed, command = gitmerge.setup(store.root)
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
