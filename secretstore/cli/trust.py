"""trust / untrust / accept-revert / upgrade: whose writes to the store you accept."""

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
    open_store,
    scope_of,
)
from secretstore.console import notice, text_table
from secretstore.errors import NotFoundError, SecretStoreError, UsageError
from secretstore.keys import PublicKey
from secretstore.recipients import check_label, describe_tag
from secretstore.store import caller_public_key

KeyArg = Annotated[
    str | None,
    typer.Argument(metavar="PUBLIC_KEY", help="A writer's public key (ssk2...), as 'secretstore identity' prints it."),
]


@app.command("trust")
def trust_command(
    ctx: typer.Context,
    public_key: KeyArg = None,
    label: Annotated[str, typer.Option("--label", metavar="NAME", help="A label for the key, e.g. a person.")] = "",
    show: Annotated[bool, typer.Option("--list", help="List the writers you trust for this store.")] = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Trust PUBLIC_KEY to write this store (check it with its owner first), or --list whom you trust.

    Files signed by anyone you do not trust (directly, or because a writer you
    trust added them with 'recipients add') are refused. Your choice is kept
    outside the store, for this store only.

    \b
      secretstore trust ssk2... --label alice
      secretstore trust --list
    """
    target = open_store(ctx, store)
    trust = target.trust(caller_public_key())
    if show or public_key is None:
        if public_key is not None:
            raise UsageError("give PUBLIC_KEY or --list, not both")
        _list_trust(target, trust, as_json)
        return
    key = PublicKey.parse(public_key, check_label(label))
    added = trust.trust_key(key)
    shown = f"{key.text} ({key.label})" if key.label else key.text
    typer.echo(f"{'Trusted' if added else 'Already trusted'} {shown} as a writer of {target.root}")


def _list_trust(target, trust, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    rows: list[dict[str, object]] = []
    for key, label in trust.explicit().items():
        info = trust.state.writers.get(key, {})
        rows.append({"public_key": key, "label": label, "trusted": "explicitly",
                     "how": info.get("how", "you" if label == "you" else ""), "scopes": None})
    try:
        store_wide, scoped, revoked = trust._derive()
    except SecretStoreError:  # a roster you do not accept: doctor says why
        store_wide, scoped, revoked = set(), {}, set()
    explicit = set(trust.explicit())
    for key in sorted(store_wide - explicit):
        rows.append({"public_key": key, "label": trust.label_of(key), "trusted": "through recipients.toml",
                     "how": "", "scopes": None})
    for key, tags in sorted(scoped.items()):
        if key not in explicit:
            rows.append({"public_key": key, "label": trust.label_of(key), "trusted": "through recipients.toml",
                         "how": "", "scopes": sorted(tags)})
    for key in sorted(set(trust.state.revoked) | revoked):
        rows.append({"public_key": key, "label": trust.label_of(key), "trusted": "no (removed)", "how": "",
                     "scopes": None})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("No data found")
        return
    table = [[str(r["public_key"]), str(r["label"]), str(r["trusted"]),
              ", ".join(describe_tag(t) for t in r["scopes"]) if r["scopes"] else "all"]  # type: ignore[attr-defined]
             for r in rows]
    typer.echo(text_table(["Public key", "Label", "Trusted", "Scopes"], table))


@app.command("untrust")
def untrust_command(
    ctx: typer.Context,
    public_key: Annotated[str, typer.Argument(metavar="PUBLIC_KEY", help="The key to stop trusting.")],
    store: StoreOpt = None,
) -> None:
    """Stop trusting PUBLIC_KEY's writes to this store (also if recipients.toml vouches for it)."""
    target = open_store(ctx, store)
    key = PublicKey.parse(public_key)
    was = target.trust(caller_public_key()).untrust_key(key)
    typer.echo(f"{'Stopped trusting' if was else 'Now refusing'} {key.text} as a writer of {target.root}")


@app.command("accept-revert")
def accept_revert(
    ctx: typer.Context,
    entity: Annotated[
        str, typer.Argument(metavar="ENTITY", help="team, project, cluster, or recipients (recipients.toml).")
    ],
    scope_id: IdOpt = None,
    store: StoreOpt = None,
) -> None:
    """Accept an older version of a file that you reverted on purpose (refused as a rollback otherwise).

    \b
      git revert HEAD && secretstore accept-revert team
      secretstore accept-revert project --id prj42
    """
    target = open_store(ctx, store)
    me = caller_public_key()
    trust = target.trust(me)
    if entity == "recipients":
        if scope_id:
            raise UsageError("recipients takes no --id")
        data = target.read_roster_bytes()
        if data is None:
            raise NotFoundError("this store has no recipients.toml")
        roster = trust.accept_roster(data, "recipients.toml", check_counter=False)
        relpath, counter = "recipients.toml", roster.counter
    else:
        if entity not in ("team", "project", "cluster"):
            raise UsageError(f"unknown entity {entity!r}: choose one of team, project, cluster, recipients")
        scope = scope_of(Entity(entity), scope_id)
        file = target.load(scope)
        if file is None:
            raise NotFoundError(f"{scope} has no secrets file")
        target.verify(scope, file, me, check_counter=False)
        relpath, counter = scope.relpath, file.counter
    seen = trust.state.counters.get(relpath, 0)
    if counter >= seen:
        typer.echo(f"{relpath} is version {counter}; nothing to accept (the newest you have read is {seen})")
        return
    trust.accept_revert(relpath, counter)
    typer.echo(f"Accepted {relpath} at version {counter} (you had read version {seen})")


@app.command("upgrade")
def upgrade(ctx: typer.Context, store: StoreOpt = None) -> None:
    """Sign the store's 0.1 files that you can open, and its 0.1 recipients.toml, as you.

    Run it once, on a store you know is intact: signing vouches for what the
    files hold. Files you cannot open are skipped; one of their recipients
    must upgrade them.
    """
    target = open_store(ctx, store)
    report = target.upgrade(identity_for_read())
    for scope, message in report.skipped:
        sys.stderr.write(f"secretstore: warning: skipped {scope}: {message}\n")
    signed = ", ".join(str(s) for s in report.changed) or "none"
    if report.roster:
        notice("recipients.toml is signed now: you vouch for every key it lists")
    typer.echo(f"Signed: {signed}; already signed: {len(report.unchanged)}")
