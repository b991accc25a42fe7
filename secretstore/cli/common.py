"""What the handlers share: the store and scope of a command line, the identity, reading input, JSON.

No typer here: handlers run on the fast path.
"""

from __future__ import annotations

import os
import sys

from secretstore import fsio
from secretstore.console import notice, print_line, stdin_is_tty, warning_line, write_stdout
from secretstore.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args
    from secretstore.context import Context
    from secretstore.identity import Identity
    from secretstore.store import Scope, Store


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def store_of(args: Args) -> Store:
    """The store of this command line: --store > $SECRETSTORE_DIR > .secretstore.toml > default."""
    from secretstore.paths import listing_dir
    from secretstore.store import Store

    return Store(store_root_of(args)[0], listing_dir=listing_dir())


def store_root_of(args: Args) -> tuple[str, str]:
    """(the store's directory, what chose it: "--store", "$SECRETSTORE_DIR", a dotfile's path or "default")."""
    from secretstore.context import resolve_store

    return resolve_store(_text(args.get("store")), warn=warning_line)


def context_of(args: Args, *, allow_vars: bool = False) -> Context:
    """The whole context (store, project, cluster, team) of an exec, export or inject line;
    ``allow_vars`` (exec) also reads the names the dotfile lets exec inject."""
    from secretstore.context import resolve_context

    return resolve_context(
        _text(args.get("project")),
        _text(args.get("cluster")),
        store=_text(args.get("store")),
        no_team=bool(args.get("no_team")),
        warn=warning_line,
        allow_vars=allow_vars,
    )


def scope_of(args: Args, store: Store | None = None) -> Scope:
    """The scope of ENTITY and --id, validated; an --id given for team is checked against the store."""
    from secretstore.rules import check_entity
    from secretstore.store import Scope

    entity = args.get("entity")
    scope_id = args.get("scope_id")
    check_entity(entity if isinstance(entity, str) else "")
    if entity == "team" and isinstance(scope_id, str) and scope_id:
        from secretstore.commands.info import check_team_id

        check_team_id(store if store is not None else store_of(args), scope_id)
        scope_id = None
    return Scope.of(str(entity), scope_id if isinstance(scope_id, str) else None)


def identity_for_write(store: Store) -> Identity:
    """The identity, created on first use with a one-line notice on stderr.

    A first identity is never created inside ``store``: a shared (git) store would publish it.
    """
    from secretstore import env, paths
    from secretstore.identity import check_outside_store, resolve_identity

    if not os.environ.get(env.KEY):
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
    from secretstore.identity import resolve_identity

    identity, _created = resolve_identity(create=False)
    return identity


def read_bytes(path: str | None, what: str, max_bytes: int = fsio.MAX_INPUT_BYTES) -> tuple[bytes, str]:
    """(bytes, source) of the file at ``path``, or of stdin for None or '-', bounded (``fsio.read_input``)."""
    if path is None or path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # started with fd 0 closed (``<&-``): no input, as from an empty stdin
            return b"", "stdin"
        return fsio.read_bounded(stream, "stdin", what, max_bytes), "stdin"
    return fsio.read_input(path, what, max_bytes), path


def read_text(path: str | None, what: str, max_bytes: int = fsio.MAX_INPUT_BYTES) -> tuple[str, str]:
    """(text, source) of the file at ``path``, or of stdin for None or '-'."""
    raw, source = read_bytes(path, what, max_bytes)
    try:
        return raw.decode("utf-8"), source
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not valid UTF-8") from None


def print_json(data: object) -> None:
    import json

    write_stdout((json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def prompt_line(label: str) -> str:
    """Ask for one line on the terminal (echoed: for names, never for values)."""
    sys.stderr.write(f"{label}: ")
    sys.stderr.flush()
    if sys.stdin is None:  # fd 0 closed: nothing to read, as at the end of input
        raise EOFError
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")




def my_key() -> str:
    """The caller's public key text ("" without an identity): their own writes read "you"."""
    from secretstore.errors import SecretStoreError
    from secretstore.store import caller_public_key

    try:
        me = caller_public_key()
    except SecretStoreError:
        return ""
    return "" if me is None else me.text


def who(writer: str | None, label: str, me: str) -> str:
    """A writer as tables show it: its label (``you`` for your own key) and the key's start."""
    if not writer:
        return "unknown (written by 0.1)"
    label = label or ("you" if writer == me else "")
    return f"{label} ({writer[:16]}...)" if label else f"{writer[:16]}..."


__all__ = [
    "context_of",
    "identity_for_read",
    "identity_for_write",
    "my_key",
    "print_json",
    "print_line",
    "prompt_line",
    "read_bytes",
    "read_text",
    "scope_of",
    "stdin_is_tty",
    "store_of",
    "store_root_of",
    "who",
]
