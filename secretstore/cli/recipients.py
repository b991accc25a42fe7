"""recipients list|add|remove and rotate: who can read the store, and fresh data keys."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from secretstore.cli import app
from secretstore.cli.common import (
    Entity,
    IdOpt,
    JsonOpt,
    StoreOpt,
    identity_for_read,
    identity_for_write,
    open_store,
    scope_of,
)
from secretstore.console import text_table
from secretstore.errors import NotFoundError, NotRecipientError, UsageError
from secretstore.keys import PublicKey as Recipient
from secretstore.recipients import check_label, describe_tag
from secretstore.store import TEAM, Scope, SharingReport, Store, caller_public_key

recipients_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, '\b' blocks kept as written
    help=(
        "Who can read the store or one scope. Without --team/--project/--cluster a change is "
        "store-wide: every scope file you can open, and recipients.toml (who new scopes are sealed to)."
    ),
    no_args_is_help=True,
)
app.add_typer(recipients_app, name="recipients")

TeamOpt = Annotated[bool, typer.Option("--team", help="Only the team scope.")]
ProjectOpt = Annotated[
    str | None, typer.Option("--project", metavar="ID", help="Only this project's scope.")
]
ClusterOpt = Annotated[
    str | None, typer.Option("--cluster", metavar="ID", help="Only this cluster's scope.")
]
KeyArg = Annotated[str, typer.Argument(metavar="PUBLIC_KEY", help="A public key (ssk1...), as 'secretstore identity' prints it.")]


def chosen_scope(team: bool, project: str | None, cluster: str | None) -> Scope | None:
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
    if project is not None:
        return Scope.of("project", project)
    if cluster is not None:
        return Scope.of("cluster", cluster)
    return None


def warn_skipped(report: SharingReport) -> None:
    for scope, message in report.skipped:
        sys.stderr.write(f"secretstore: warning: skipped {scope}: {message}\n")
    sys.stderr.flush()


def target_name(scope: Scope | None) -> str:
    return str(scope) if scope is not None else "the store (recipients.toml)"


def describe_scopes(scopes: list[Scope]) -> str:
    return ", ".join(str(scope) for scope in scopes) if scopes else "none"


@recipients_app.command("list")
def list_recipients(
    ctx: typer.Context,
    team: TeamOpt = False,
    project: ProjectOpt = None,
    cluster: ClusterOpt = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """List public keys and labels (store-wide: recipients.toml; with a scope option: that file). No key needed."""
    target = open_store(ctx, store)
    scope = chosen_scope(team, project, cluster)
    rows: list[dict[str, object]]
    if scope is None:
        roster = target.roster(caller_public_key())
        rows = [] if roster is None else [
            {"public_key": m.public_key, "label": m.label,
             "scopes": list(m.scopes) or None, "added_by": m.added_by or None}
            for m in roster.members
        ]
        if roster is None and not as_json:
            sys.stderr.write(
                "secretstore: no recipients.toml in this store: new scope files are sealed to their writer only\n"
            )
    else:
        file = target.load(scope)
        if file is not None:
            target.verify(scope, file, caller_public_key())
        rows = [] if file is None else [{"public_key": s.public_key, "label": s.label} for s in file.recipients]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo("No data found")
    elif scope is None:
        table = [
            [str(row["public_key"]), str(row["label"]),
             ", ".join(describe_tag(str(t)) for t in row["scopes"]) if row["scopes"] else "all (store-wide)"]  # type: ignore[attr-defined]
            for row in rows
        ]
        typer.echo(text_table(["Public key", "Label", "Scopes"], table))
    else:
        typer.echo(text_table(["Public key", "Label"], [[str(row["public_key"]), str(row["label"])] for row in rows]))


@recipients_app.command("add")
def add_recipient(
    ctx: typer.Context,
    public_key: KeyArg,
    label: Annotated[str, typer.Option("--label", metavar="NAME", help="A human label, e.g. a person or a node.")] = "",
    team: TeamOpt = False,
    project: ProjectOpt = None,
    cluster: ClusterOpt = None,
    store: StoreOpt = None,
) -> None:
    """Let PUBLIC_KEY read the store (every scope you can open, and new ones) or one scope.

    \b
      secretstore recipients add "$(cat bob.pub)" --label bob
      secretstore recipients add ssk1... --label gpu-a-node --cluster gpu-a
    """
    recipient = Recipient.parse(public_key, check_label(label))
    scope = chosen_scope(team, project, cluster)
    target = open_store(ctx, store)
    report = target.add_recipient(recipient, identity_for_write(target), scope)
    warn_skipped(report)
    typer.echo(
        f"Added recipient {recipient.text} to {target_name(scope)}; "
        f"re-sealed: {describe_scopes(report.changed)}"
    )


@recipients_app.command("remove")
def remove_recipient(
    ctx: typer.Context,
    public_key: KeyArg,
    team: TeamOpt = False,
    project: ProjectOpt = None,
    cluster: ClusterOpt = None,
    store: StoreOpt = None,
) -> None:
    """Stop PUBLIC_KEY reading the store or one scope: each file it could open gets a new data key
    and every value is re-encrypted (a removed reader may have kept the old key)."""
    recipient = Recipient.parse(public_key)
    scope = chosen_scope(team, project, cluster)
    target = open_store(ctx, store)
    report = target.remove_recipient(recipient, identity_for_read(), scope)
    typer.echo(
        f"Removed recipient {recipient.text} from {target_name(scope)}; "
        f"rotated: {describe_scopes(report.changed)}"
    )
    for skipped, _message in report.skipped:  # only those still sealed to the key matter here
        file = target.load(skipped)
        if file is not None and any(s.public_key == recipient.text for s in file.recipients):
            sys.stderr.write(
                f"secretstore: warning: {skipped} is still sealed to {recipient.text}: "
                "ask one of its recipients to remove it\n"
            )


class _Progress:
    """'Rotating 3/40 cluster gpu-a' on stderr, only when stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.enabled = total > 1 and sys.stderr.isatty()

    def __call__(self, scope: Scope) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // self.total
            sys.stderr.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {str(scope)[:40]:<40}"
            )
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    entity: Annotated[
        Entity | None, typer.Argument(metavar="[ENTITY]", help="team, project or cluster.", show_default=False)
    ] = None,
    scope_id: IdOpt = None,
    all_scopes: Annotated[bool, typer.Option("--all", help="Every scope in the store.")] = False,
    store: StoreOpt = None,
) -> None:
    """Give a scope (or --all) a new data key and re-encrypt every value, history included.

    Crash-safe: each file is replaced atomically with its new key sealed inside
    it, so a kill at any point leaves each file old or new, never a mix.
    """
    if all_scopes == (entity is not None):
        raise UsageError("give an ENTITY (with --id for project or cluster) or --all")
    target: Store = open_store(ctx, store)
    scopes = None if all_scopes else [scope_of(entity, scope_id)]  # type: ignore[arg-type]
    if scopes is not None and target.load(scopes[0]) is None:
        raise NotFoundError(f"{scopes[0]} has no secrets file to rotate")
    identity = identity_for_read()
    progress = _Progress(len(target.scopes()) if scopes is None else 1)
    report = target.rotate(scopes, identity, progress)
    if scopes is not None and report.skipped:
        raise NotRecipientError(report.skipped[0][1])
    warn_skipped(report)
    typer.echo(f"Rotated {len(report.changed)} scope(s): {describe_scopes(report.changed)}")
