"""recipients list|add|remove and rotate: who can read the store, and fresh data keys."""

from __future__ import annotations

import sys

from secretstore.cli.common import (
    identity_for_read,
    identity_for_write,
    print_json,
    scope_of,
    store_of,
)
from secretstore.console import notice, print_lines, print_table, warning_line
from secretstore.errors import NotFoundError, NotRecipientError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args
    from secretstore.store import Scope, SharingReport


def chosen_scope(args: Args) -> Scope | None:
    from secretstore.store import TEAM, Scope

    team, project, cluster = bool(args.get("team")), args.get("project"), args.get("cluster")
    # `is not None`, not truthiness: an empty `--cluster "$UNSET"` must be refused
    # as an invalid id, never widened into a store-wide change.
    given = [
        flag
        for flag, on in (("--team", team), ("--project", project is not None), ("--cluster", cluster is not None))
        if on
    ]
    if len(given) > 1:
        raise UsageError(f"give at most one of --team, --project, --cluster (got {', '.join(given)})")
    if team:
        return TEAM
    if isinstance(project, str):
        return Scope.of("project", project)
    if isinstance(cluster, str):
        return Scope.of("cluster", cluster)
    return None


def warn_skipped(report: SharingReport) -> None:
    for scope, message in report.skipped:
        warning_line(f"skipped {scope}: {message}")


def target_name(scope: Scope | None) -> str:
    return str(scope) if scope is not None else "the store (recipients.toml)"


def describe_scopes(scopes: list[Scope]) -> str:
    return ", ".join(str(scope) for scope in scopes) if scopes else "none"


def list_command(args: Args) -> None:
    from secretstore.layers import require_store
    from secretstore.recipients import describe_tag
    from secretstore.store import caller_public_key

    store = store_of(args)
    scope = chosen_scope(args)
    require_store(store)
    as_json = bool(args.get("as_json"))
    me = caller_public_key()
    rows: list[dict[str, object]]
    if scope is None:
        roster = store.roster(me)
        rows = [] if roster is None else [
            {"public_key": m.public_key, "label": m.label, "scopes": list(m.scopes) or None,
             "added_by": m.added_by or None}
            for m in roster.members
        ]
        if roster is None and not as_json:
            notice("no recipients.toml in this store: new scope files are sealed to their writer only")
    else:
        file = store.load(scope)
        if file is not None:
            store.verify(scope, file, me)
        rows = [] if file is None else [{"public_key": s.public_key, "label": s.label} for s in file.recipients]
    if as_json:
        print_json(rows)
    elif not rows:
        print_lines(["No data found"])
    elif scope is None:
        print_table(["Public key", "Label", "Scopes"], [
            [str(row["public_key"]), str(row["label"]),
             ", ".join(describe_tag(str(t)) for t in row["scopes"]) if isinstance(row["scopes"], list)
             else "all (store-wide)"]
            for row in rows
        ])
    else:
        print_table(["Public key", "Label"], [[str(row["public_key"]), str(row["label"])] for row in rows])


def add_command(args: Args) -> None:
    from secretstore.keys import PublicKey
    from secretstore.recipients import check_label

    recipient = PublicKey.parse(str(args.get("public_key")), check_label(str(args.get("label") or "")))
    scope = chosen_scope(args)
    store = store_of(args)
    identity = identity_for_write(store)
    report = store.add_recipient(recipient, identity, scope)
    warn_skipped(report)
    from secretstore.commands.secrets import record_scopes

    # who can now read what: each scope sealed to the key, with its names
    readable: list[tuple[Scope | None, list[str]]] = [
        (each, [name for name, _updated in store.list(each, identity.public)]) for each in report.changed
    ]
    record_scopes(store, "recipients add", readable or [(scope, [])], identity, detail=f"added {recipient.text}")
    print_lines([
        f"Added recipient {recipient.text} to {target_name(scope)}; re-sealed: {describe_scopes(report.changed)}"
    ])


def remove_command(args: Args) -> None:
    from secretstore.keys import PublicKey
    from secretstore.layers import require_store

    recipient = PublicKey.parse(str(args.get("public_key")))
    scope = chosen_scope(args)
    store = store_of(args)
    require_store(store)
    report = store.remove_recipient(recipient, identity_for_read(), scope)
    print_lines([
        f"Removed recipient {recipient.text} from {target_name(scope)}; rotated: {describe_scopes(report.changed)}"
    ])
    exposed = [(each, names) for each, names in report.exposed if names]
    if exposed:
        # Offboarding: every value the key could read (history included) is marked "rotate needed".
        warning_line(f"{recipient.text} could read these secrets (current and earlier values); change each at its "
                     "source and set it again (doctor, scopes and list --long show what is left):")
        for each, names in exposed:
            warning_line(f"  {each}: {', '.join(names)}")
    from secretstore.commands.secrets import record, record_scopes

    if exposed:
        record_scopes(store, "recipients remove", [(each, names) for each, names in exposed], detail=f"removed {recipient.text}; rotate needed")
    else:
        record(store, "recipients remove", scope, [], detail=f"removed {recipient.text}")
    for skipped, _message in report.skipped:  # only those still sealed to the key matter here
        file = store.load(skipped)
        if file is not None and any(s.public_key == recipient.text for s in file.recipients):
            warning_line(f"{skipped} is still sealed to {recipient.text}: ask one of its recipients to remove it")


class _Progress:
    """'Rotating 3/40 cluster gpu-a' on stderr, only when stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.enabled = total > 1 and sys.stderr.isatty()

    def __call__(self, scope: Scope) -> None:
        from secretstore.console import escape

        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // self.total
            label = escape(str(scope))[:40]
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label:<40}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def rotate_command(args: Args) -> None:
    from secretstore.layers import require_store

    all_scopes = bool(args.get("all_scopes"))
    entity = args.get("entity")
    if all_scopes == (entity is not None):
        raise UsageError("give an ENTITY (with --id for project or cluster) or --all")
    store = store_of(args)
    scopes = None if all_scopes else [scope_of(args, store)]
    require_store(store)
    if scopes is not None and store.load(scopes[0]) is None:
        raise NotFoundError(f"{scopes[0]} has no secrets file to rotate")
    identity = identity_for_read()
    progress = _Progress(len(store.scopes()) if scopes is None else 1)
    report = store.rotate(scopes, identity, progress)
    if scopes is not None and report.skipped:
        raise NotRecipientError(report.skipped[0][1])
    warn_skipped(report)
    from secretstore.commands.secrets import record_scopes

    record_scopes(store, "rotate", [(each, []) for each in report.changed], identity, detail="new data key")
    print_lines([f"Rotated {len(report.changed)} scope(s): {describe_scopes(report.changed)}"])
