"""git setup / git merge-driver / doctor: sharing a store as a git checkout, and checking it."""

from __future__ import annotations

from typing import Annotated

import typer

from secretstore.cli import app
from secretstore.cli.common import (
    EntityArg,
    IdOpt,
    StoreOpt,
    identity_for_read,
    open_store,
    scope_of,
)
from secretstore.console import notice
from secretstore.errors import UsageError

git_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, '\b' blocks kept as written
    help="Share the store as a git checkout: 'git setup' once per clone; git calls 'git merge-driver'.",
    no_args_is_help=True,
)
app.add_typer(git_app, name="git")


@git_app.command("setup")
def setup(ctx: typer.Context, store: StoreOpt = None) -> None:
    """Write .gitattributes in the store and register the merge driver in this clone's git config."""
    from secretstore import gitmerge

    target = open_store(ctx, store)
    changed, command = gitmerge.setup(target.root)
    if changed:
        notice("wrote .gitattributes: commit it so every clone merges scope files entry by entry")
    typer.echo(f"merge driver: {command}")


@git_app.command("merge-driver")
def merge_driver(
    base: Annotated[str, typer.Argument(metavar="BASE", help="git's %O: the common ancestor.")],
    ours: Annotated[str, typer.Argument(metavar="OURS", help="git's %A: ours, replaced by the result.")],
    theirs: Annotated[str, typer.Argument(metavar="THEIRS", help="git's %B: theirs.")],
    path: Annotated[str, typer.Argument(metavar="PATH", help="git's %P: the file's path, for messages.")] = "scope file",
) -> None:
    """Merge a scope file three-way, entry by entry (git calls this; exit 1 marks a conflict)."""
    from secretstore import gitmerge

    gitmerge.run_merge_driver(base, ours, theirs, path, identity_for_read())


@git_app.command("resolve")
def resolve(
    ctx: typer.Context,
    entity: EntityArg,
    scope_id: IdOpt = None,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="The secret left in conflict.")] = "",
    ours: Annotated[bool, typer.Option("--ours", help="Keep our side's value (git's stage 2).")] = False,
    theirs: Annotated[bool, typer.Option("--theirs", help="Keep their side's value (git's stage 3).")] = False,
    store: StoreOpt = None,
) -> None:
    """Settle one secret a git merge left in conflict, keeping one side's value; nothing else changes.

    \b
      secretstore git resolve team --name WANDB_API_KEY --theirs
      git add team.toml && git commit
    """
    from secretstore import gitmerge
    from secretstore.rules import check_name

    if ours == theirs:
        raise UsageError("give exactly one of --ours, --theirs")
    scope = scope_of(entity, scope_id)
    target = open_store(ctx, store)
    remaining = gitmerge.resolve(target, scope, check_name(name), "ours" if ours else "theirs", identity_for_read())
    side = "ours" if ours else "theirs"
    if remaining:
        typer.echo(f"Resolved {scope.entity} secret '{name}' with {side}; still in conflict: {', '.join(remaining)}")
    else:
        typer.echo(f"Resolved {scope.entity} secret '{name}' with {side}; no conflict left: git add {scope.relpath}")


@app.command("doctor")
def doctor(
    ctx: typer.Context,
    verify: Annotated[
        bool, typer.Option("--verify", help="Also unlock every scope you can open and check its MAC.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Check the identity, the store, who each scope is sealed to, and the git setup.

    Needs no key (and asks no passphrase) unless --verify is given. Exit 1 when
    something is broken.
    """
    from secretstore import doctor as diagnosis

    target = open_store(ctx, store)
    findings = diagnosis.diagnose(target, identity_for_read() if verify else None)
    for finding in findings:
        typer.echo(f"{finding.level}: {finding.message}")
    if any(finding.level == diagnosis.ERROR for finding in findings):
        raise typer.Exit(1)
