"""Pieces every command module shares: the store, the identity, option types."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from secretstore import paths
from secretstore.console import notice
from secretstore.errors import UsageError
from secretstore.identity import ENV_KEY, Identity, check_outside_store, resolve_identity
from secretstore.store import Scope, Store


class Entity(StrEnum):
    team = "team"
    project = "project"
    cluster = "cluster"


EntityArg = Annotated[
    Entity,
    typer.Argument(metavar="ENTITY", help="Scope of the secret: team, project or cluster.", show_default=False),
]
IdOpt = Annotated[
    str | None,
    typer.Option("--id", metavar="ID", help="Project or cluster id (required for project and cluster, refused for team)."),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", metavar="NAME", help="Secret name: a letter, then letters, digits or '_' (prompted when missing)."),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", metavar="DIR", help="Store directory (default: $SECRETSTORE_DIR, then the user data dir)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_store(ctx: typer.Context, store_flag: str | None = None) -> Store:
    """The store named by the command's --store, else the global --store, else the environment."""
    root_flag = (ctx.find_root().obj or {}).get("store")
    return Store(paths.store_dir(store_flag or root_flag))


def scope_of(entity: Entity, scope_id: str | None) -> Scope:
    return Scope.of(entity.value, scope_id)


def identity_for_write(store: Store) -> Identity:
    """The identity, created on first use with a one-line notice on stderr.

    A first identity is never created inside ``store``: a shared (git) store would publish it.
    """
    if not os.environ.get(ENV_KEY):
        path = paths.identity_path()
        if not os.path.lexists(path):
            check_outside_store(path, store.root)
    identity, created = resolve_identity(create=True)
    if created:
        notice(
            f"created a new identity at {identity.source} (public key {identity.public_text}); "
            "back it up: without it these secrets cannot be read"
        )
    return identity


def identity_for_read() -> Identity:
    identity, _created = resolve_identity(create=False)
    return identity


def forget_snapshot(store: Store, scope: Scope, identity: Identity) -> None:
    """Drop ``scope``'s exec snapshot, so a deleted value does not stay in the cache."""
    directory = paths.snapshot_dir()
    if directory is not None:
        from secretstore.snapshot import Snapshots

        Snapshots(directory, identity, store.root).forget(scope)


def read_text(path: str | None, what: str) -> tuple[str, str]:
    """(text, source) of the file at ``path``, or of stdin for None or '-'."""
    if path is None or path == "-":
        raw, source = sys.stdin.buffer.read(), "stdin"
    else:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
        source = path
    try:
        return raw.decode("utf-8"), source
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not valid UTF-8") from None
