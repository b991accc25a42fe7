"""set / list / get / delete: Gradient's command lines, with 'gradient' replaced by 'secretstore'.

Each command is registered twice: top level and under the ``secrets`` group.
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer

from secretstore.cli import app, secrets_app
from secretstore.cli.common import (
    EntityArg,
    IdOpt,
    JsonOpt,
    NameOpt,
    StoreOpt,
    forget_snapshot,
    identity_for_read,
    identity_for_write,
    open_store,
    read_text,
    scope_of,
)
from secretstore.console import stdin_is_tty, text_table, warning_line
from secretstore.errors import NotFoundError, UsageError
from secretstore.fastget import print_secret
from secretstore.loadervars import store_warning
from secretstore.rules import check_name, check_value, strip_one_newline
from secretstore.store import Scope, Store

ValueOpt = Annotated[
    str | None,
    typer.Option(
        "--value",
        metavar="VALUE",
        help=(
            "The value. Prefer '-' (read stdin) or --value-file: a value on the command line "
            "lands in shell history and is visible to other users in ps. Without --value you "
            "get a hidden prompt, or stdin when it is piped."
        ),
    ),
]
ValueFileOpt = Annotated[
    str | None,
    typer.Option("--value-file", metavar="PATH", help="Read the value from a file ('-' for stdin); one trailing newline is dropped."),
]


def _read_stream_value(path: str | None) -> str:
    text, source = read_text(path, "value file")
    if not text:
        raise UsageError(f"secret value from {source} is empty")
    return check_value(strip_one_newline(text))


def _prompt_value(name: str) -> str:
    try:
        first = getpass.getpass(f"Value for {name}: ")
        second = getpass.getpass(f"Value for {name} (again): ")
    except EOFError:
        raise UsageError("no value given") from None
    if first != second:
        raise UsageError("the two values differ; nothing was stored")
    return check_value(first)


def read_value(value: str | None, value_file: str | None) -> str | None:
    """The value from --value, --value-file or piped stdin; None when it must be prompted for."""
    if value is not None and value_file is not None:
        raise UsageError("give --value or --value-file, not both")
    if value_file is not None:
        return _read_stream_value(value_file)
    if value == "-":
        return _read_stream_value(None)
    if value is not None:
        return check_value(value)
    if stdin_is_tty():
        return None
    return _read_stream_value(None)


def resolve_name(name: str | None) -> str:
    if name is None:
        if not stdin_is_tty():
            raise UsageError("missing --name")
        name = typer.prompt("Name")
    return check_name(name.strip() if name else "")


def set_secret(
    ctx: typer.Context,
    entity: EntityArg,
    scope_id: IdOpt = None,
    name: NameOpt = None,
    value: ValueOpt = None,
    value_file: ValueFileOpt = None,
    store: StoreOpt = None,
) -> None:
    """Set a secret (create or replace).

    \b
      secretstore set team --name=WANDB_API_KEY            # hidden prompt
      printf %s "$TOKEN" | secretstore set cluster --id=gpu-a --name=HF_TOKEN --value -
      secretstore set project --id=prj42 --name=TLS_KEY --value-file key.pem
    """
    scope = scope_of(entity, scope_id)
    secret_name = resolve_name(name)
    secret_value = read_value(value, value_file)  # given values fail fast, before any key work
    target = open_store(ctx, store)
    identity = identity_for_write(target)
    if secret_value is None:  # prompt after the passphrase, so a wrong one loses nothing typed
        secret_value = _prompt_value(secret_name)
    target.set(scope, secret_name, secret_value, identity)
    typer.echo(f"Set {scope.entity} secret '{secret_name}'")
    if (held_back := store_warning(secret_name)) is not None:
        warning_line(held_back)


def list_secrets(
    ctx: typer.Context,
    entity: EntityArg,
    scope_id: IdOpt = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """List secret names in a scope (values are never shown; no key needed)."""
    scope = scope_of(entity, scope_id)
    rows = open_store(ctx, store).list(scope)
    if as_json:
        payload = [
            {"name": name, "entity": scope.entity, "id": scope.scope_id, "updated": updated}
            for name, updated in rows
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    if not rows:
        typer.echo("No data found")
        return
    typer.echo(text_table(["Name", "Updated"], [list(row) for row in rows]))


def get_secret(
    ctx: typer.Context,
    entity: EntityArg,
    scope_id: IdOpt = None,
    name: NameOpt = None,
    store: StoreOpt = None,
) -> None:
    """Print a secret's value exactly (a newline is added only on a terminal)."""
    # secretstore.main answers most get lines in secretstore.fastget, without typer;
    # this runs for the ones it hands over (a --name prompt, for one). Both end in print_secret.
    scope = scope_of(entity, scope_id)
    secret_name = resolve_name(name)
    print_secret(open_store(ctx, store), scope, secret_name)


def require_listed(target: Store, scope: Scope, name: str, purpose: str = "") -> None:
    """Say 'no such secret' before asking for a key that would not help."""
    if name not in {listed for listed, _updated in target.list(scope)}:
        raise NotFoundError(f"no {scope} secret {name!r}{purpose}")


def delete_secret(
    ctx: typer.Context,
    entity: EntityArg,
    scope_id: IdOpt = None,
    name: NameOpt = None,
    store: StoreOpt = None,
) -> None:
    """Delete a secret."""
    scope = scope_of(entity, scope_id)
    secret_name = resolve_name(name)
    target = open_store(ctx, store)
    require_listed(target, scope, secret_name, " to delete")
    identity = identity_for_read()
    target.delete(scope, secret_name, identity)
    forget_snapshot(target, scope, identity)
    typer.echo(f"Deleted {scope.entity} secret '{secret_name}'")


for _group in (app, secrets_app):
    _group.command("set")(set_secret)
    _group.command("list")(list_secrets)
    _group.command("get")(get_secret)
    _group.command("delete")(delete_secret)

