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

    store = store_of(args)
    scope = chosen_scope(args)
    require_store(store)
    as_json = bool(args.get("as_json"))
    if scope is None:
        listed = store.store_recipients()
        rows = [(r.text, r.label) for r in listed] if listed is not None else []
        if listed is None and not as_json:
            notice("no recipients.toml in this store: new scope files are sealed to their writer only")
    else:
        file = store.load(scope)
        rows = [] if file is None else [(s.public_key, s.label) for s in file.recipients]
    if as_json:
        print_json([{"public_key": key, "label": label} for key, label in rows])
    elif not rows:
        print_lines(["No data found"])
    else:
        print_table(["Public key", "Label"], [list(row) for row in rows])


def add_command(args: Args) -> None:
    from secretstore.identity import Recipient
    from secretstore.recipients import check_label

    recipient = Recipient.parse(str(args.get("public_key")), check_label(str(args.get("label") or "")))
    scope = chosen_scope(args)
    store = store_of(args)
    report = store.add_recipient(recipient, identity_for_write(store), scope)
    warn_skipped(report)
    print_lines([
        f"Added recipient {recipient.text} to {target_name(scope)}; re-sealed: {describe_scopes(report.changed)}"
    ])


def remove_command(args: Args) -> None:
    from secretstore.identity import Recipient
    from secretstore.layers import require_store

    recipient = Recipient.parse(str(args.get("public_key")))
    scope = chosen_scope(args)
    store = store_of(args)
    require_store(store)
    report = store.remove_recipient(recipient, identity_for_read(), scope)
    print_lines([
        f"Removed recipient {recipient.text} from {target_name(scope)}; rotated: {describe_scopes(report.changed)}"
    ])
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
    print_lines([f"Rotated {len(report.changed)} scope(s): {describe_scopes(report.changed)}"])
