"""init / identity / passphrase: the caller's own key."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from secretstore import identity as identities
from secretstore.cli import app
from secretstore.cli.common import open_store
from secretstore.console import notice
from secretstore.errors import IdentityError, UsageError


def _refuse_env_key(command: str) -> None:
    if os.environ.get(identities.ENV_KEY):
        raise IdentityError(
            f"{identities.ENV_KEY} is set, so the identity is not on disk; '{command}' has nothing to do",
            hint=f"unset {identities.ENV_KEY} to manage the identity file",
        )


def new_passphrase(what: str = "New passphrase") -> str:
    """$SECRETSTORE_NEW_PASSPHRASE, else a hidden prompt with confirmation (terminal only)."""
    chosen = os.environ.get(identities.ENV_NEW_PASSPHRASE)
    if chosen is None:
        first = identities.terminal_prompt(f"{what}: ")
        if first is None:
            raise UsageError(
                "no terminal to ask for the new passphrase on; nothing was changed",
                hint=f"set {identities.ENV_NEW_PASSPHRASE}",
            )
        if identities.terminal_prompt(f"{what} (again): ") != first:
            raise UsageError("the two passphrases differ; nothing was changed")
        chosen = first
    if not chosen:
        raise UsageError("the passphrase is empty; nothing was changed")
    return chosen


@app.command("init")
def init(
    ctx: typer.Context,
    passphrase: Annotated[
        bool,
        typer.Option(
            "--passphrase",
            help=(
                "Protect the key with a passphrase (Argon2id): asked twice on a terminal, "
                "or taken from $SECRETSTORE_NEW_PASSPHRASE."
            ),
        ),
    ] = False,
) -> None:
    """Create your identity (refuses to overwrite one) and print its public key."""
    _refuse_env_key("init")
    from secretstore import paths

    path = paths.identity_path()
    identities.check_outside_store(path, open_store(ctx).root)
    if os.path.lexists(path):
        raise IdentityError(f"an identity already exists at {path}; refusing to overwrite it")
    chosen = new_passphrase("Passphrase for the new identity") if passphrase else None
    created = identities.create_identity(path, chosen)
    notice(f"created identity at {path}; back it up: without it your secrets cannot be read")
    typer.echo(created.public_text)


@app.command("identity")
def identity(
    show_path: Annotated[
        bool, typer.Option("--path", help="Print where the identity file lives instead of the public key.")
    ] = False,
) -> None:
    """Print your public key (ssk1...), the string others add with 'recipients add'."""
    if show_path:
        _refuse_env_key("identity --path")
        from secretstore import paths

        typer.echo(paths.identity_path())
        return
    typer.echo(identities.resolve_public_text())


@app.command("passphrase")
def passphrase(
    remove: Annotated[
        bool, typer.Option("--remove", help="Store the key unprotected again.")
    ] = False,
) -> None:
    """Set, change or remove the passphrase of your identity file (atomically).

    The current passphrase comes from a prompt or $SECRETSTORE_PASSPHRASE, the
    new one from a prompt (twice) or $SECRETSTORE_NEW_PASSPHRASE.
    """
    _refuse_env_key("passphrase")
    from secretstore import paths

    path = paths.identity_path()
    current = identities.read_key_file(path)
    if remove and isinstance(current, identities.Identity):
        notice(f"identity {path} has no passphrase; nothing to remove")
        return
    unlocked = identities.unlock(current, path)
    chosen = None if remove else new_passphrase()
    identities.write_identity_file(path, unlocked, chosen)
    notice(f"passphrase {'removed from' if remove else 'set on'} {path}")
