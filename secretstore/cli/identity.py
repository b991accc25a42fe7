"""init / identity / passphrase: the caller's own key."""

from __future__ import annotations

import os

from secretstore import env
from secretstore.cli.common import print_json, store_of
from secretstore.console import notice, print_lines
from secretstore.errors import IdentityError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args


def _refuse_env_key(command: str) -> None:
    if os.environ.get(env.KEY):
        raise IdentityError(
            f"{env.KEY} is set, so the identity is not on disk; '{command}' has nothing to do",
            hint=f"unset {env.KEY} to manage the identity file",
        )


def new_passphrase(what: str = "New passphrase", *, fallback: str | None = None) -> str:
    """$SECRETSTORE_NEW_PASSPHRASE, else $``fallback`` when named and set, else a hidden prompt
    with confirmation (terminal only)."""
    from secretstore import identity as identities

    chosen = os.environ.get(env.NEW_PASSPHRASE)
    if chosen is None and fallback is not None:
        chosen = os.environ.get(fallback)
    if chosen is None:
        first = identities.terminal_prompt(f"{what}: ")
        if first is None:
            raise UsageError(
                "no terminal to ask for the new passphrase on; nothing was changed",
                hint=f"set {env.NEW_PASSPHRASE}",
            )
        if identities.terminal_prompt(f"{what} (again): ") != first:
            raise UsageError("the two passphrases differ; nothing was changed")
        chosen = first
    if not chosen:
        raise UsageError("the passphrase is empty; nothing was changed")
    return chosen


def init_command(args: Args) -> None:
    from secretstore import identity as identities
    from secretstore import paths

    store = store_of(args)
    team = args.get("team")
    path = paths.identity_path()
    exists = not os.environ.get(env.KEY) and os.path.lexists(path)
    if isinstance(team, str):
        from secretstore.commands.info import record_team_id

        if record_team_id(store, team):
            notice(f"recorded team id {team!r} in {os.path.join(store.root, 'store.toml')}")
        else:
            notice(f"the store already records team id {team!r}")
        if exists or os.environ.get(env.KEY):
            return  # the identity is already there: --team alone is not a reason to fail
    _refuse_env_key("init")
    identities.check_outside_store(path, store.root)
    if os.path.lexists(path):
        raise IdentityError(f"an identity already exists at {path}; refusing to overwrite it")
    # There is no old passphrase here, so $SECRETSTORE_PASSPHRASE is the new one
    # (automation sets it for every command); $SECRETSTORE_NEW_PASSPHRASE still wins.
    chosen = (
        new_passphrase("Passphrase for the new identity", fallback=env.PASSPHRASE)
        if args.get("passphrase")
        else None
    )
    created = identities.create_identity(path, chosen)
    notice(f"created identity at {path}; back it up: without it your secrets cannot be read")
    print_lines([created.public_text])


def identity_command(args: Args) -> None:
    from secretstore import identity as identities
    from secretstore import paths

    if args.get("as_json"):
        on_disk = not os.environ.get(env.KEY)
        print_json({
            "public_key": identities.resolve_public_text(),
            "path": paths.identity_path() if on_disk else None,
            "source": "file" if on_disk else env.KEY,
        })
        return
    if args.get("show_path"):
        _refuse_env_key("identity --path")
        print_lines([paths.identity_path()])
        return
    print_lines([identities.resolve_public_text()])


def passphrase_command(args: Args) -> None:
    from secretstore import identity as identities
    from secretstore import paths

    _refuse_env_key("passphrase")
    remove = bool(args.get("remove"))
    path = paths.identity_path()
    current = identities.read_key_file(path)
    if remove and isinstance(current, identities.Identity):
        notice(f"identity {path} has no passphrase; nothing to remove")
        return
    unlocked = identities.unlock(current, path)
    chosen = None if remove else new_passphrase()
    identities.write_identity_file(path, unlocked, chosen)
    notice(f"passphrase {'removed from' if remove else 'set on'} {path}")
