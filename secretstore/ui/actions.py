"""What the page does, as calls into the library: the same rules, locks and checks as the CLI.

Nothing here reads or writes a store file: listing, setting and deleting go
through ``Store``, precedence through ``context``, ``layers`` and
``precedence``, so every check the library makes (signatures and whom you
trust, MAC, recipients, file permissions, the store lock) applies to the page
as it does to the command line. Values come
in from a form and go to ``Store.set``; none is ever returned from here.

No web framework is imported: routes in ``app.py`` call these functions.
"""

from __future__ import annotations

import os
import threading

from secretstore import paths
from secretstore.console import notice
from secretstore.errors import NotFoundError, SecretStoreError, UsageError
from secretstore.identity import ENV_KEY, Identity, check_outside_store, resolve_identity
from secretstore.rules import check_name, check_value, strip_one_newline
from secretstore.store import TEAM, Scope, Store

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.context import Context


class Keys:
    """The caller's identity, unlocked once when the server starts and then held in memory.

    A passphrase is asked for (or read from ``$SECRETSTORE_PASSPHRASE``) at
    the start, never while serving. Without any identity yet, the first write
    from the page creates one, as the CLI's first ``set`` does.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._identity: Identity | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Keys({'unlocked' if self._identity is not None else 'none yet'})"

    def unlock_at_start(self) -> None:
        """Unlock the identity now if there is one; a wrong passphrase fails the start."""
        if not os.environ.get(ENV_KEY) and not os.path.lexists(paths.identity_path()):
            return  # nothing to unlock: the first write creates one
        self._identity, _created = resolve_identity(create=False)

    def for_read(self) -> Identity:
        with self._lock:
            if self._identity is None:  # none at the start; says "no identity at ..." if still none
                self._identity, _created = resolve_identity(create=False, prompt=_never_prompt)
            return self._identity

    def for_write(self) -> tuple[Identity, bool]:
        """(identity, created now): a first identity is made as the CLI makes it, never in the store."""
        with self._lock:
            if self._identity is not None:
                return self._identity, False
            if not os.environ.get(ENV_KEY):
                path = paths.identity_path()
                if not os.path.lexists(path):
                    check_outside_store(path, self.store.root)
            self._identity, created = resolve_identity(create=True, prompt=_never_prompt)
            if created:
                notice(created_identity_message(self._identity))
            return self._identity, created


def _never_prompt(message: str) -> str | None:
    """While serving, a passphrase is never asked for: a request thread must not read the
    terminal. An identity protected after the start is refused with the library's message."""
    return None


def created_identity_message(identity: Identity) -> str:
    return (
        f"created a new identity at {identity.source} (public key {identity.public_text}); "
        "back it up: without it these secrets cannot be read"
    )


# --- reading ------------------------------------------------------------------------


class ScopeSummary:
    """A scope on the index: how many secrets it holds, or why that cannot be told."""

    __slots__ = ("count", "error", "scope")

    def __init__(self, scope: Scope, count: int = 0, error: str = "") -> None:
        self.scope = scope
        self.count = count
        self.error = error


def scope_summaries(store: Store) -> list[ScopeSummary]:
    """Team (always), then every project and cluster that has a file, with its count."""
    found = store.scopes()
    if TEAM not in found:
        found.insert(0, TEAM)
    summaries = []
    for scope in found:
        try:
            summaries.append(ScopeSummary(scope, len(store.list(scope))))
        except (SecretStoreError, OSError) as exc:  # one unreadable scope does not hide the others
            summaries.append(ScopeSummary(scope, error=describe_error(exc)))
    return summaries


def list_secrets(store: Store, scope: Scope) -> list[tuple[str, str]]:
    """(name, updated) of each secret, as ``secretstore list`` shows them."""
    return store.list(scope)


class Row:
    """One line of the precedence view: a name, the scope it comes from, the scopes it beats."""

    __slots__ = ("name", "origin", "overrides")

    def __init__(self, name: str, origin: str, overrides: list[str]) -> None:
        self.name = name
        self.origin = origin
        self.overrides = overrides


class Precedence:
    """What ``exec --dry-run`` would inject for a project and cluster: names and scopes, no values."""

    __slots__ = ("context", "rows", "warnings")

    def __init__(self, context: Context, rows: list[Row], warnings: list[str]) -> None:
        self.context = context
        self.rows = rows
        self.warnings = warnings


def precedence(store: Store, keys: Keys, project: str | None, cluster: str | None) -> Precedence:
    """Resolve the context as exec does (blank fields fall back to ``$SECRETSTORE_PROJECT`` /
    ``$SECRETSTORE_CLUSTER`` and ``.secretstore.toml`` where the server was started), read the
    layers with the same checks, apply project > cluster > team, and keep only names."""
    from secretstore import layers as reading
    from secretstore import precedence as ranking
    from secretstore.context import resolve_context

    context = resolve_context(project or None, cluster or None, store=store.root, check_store=False)
    layers, warnings = reading.load_layers(store, context, keys.for_read)
    merged = ranking.merge_scopes(layers)
    rows = [
        Row(name, str(item.scope), [str(scope) for scope in item.overrides])
        for name, item in merged.items()
    ]
    return Precedence(context, rows, warnings)


# --- writing ------------------------------------------------------------------------


def form_value(single_line: str, multi_line: str) -> str:
    """The value from the page's two fields (one of them filled), checked as the CLI checks it.

    The password field is used as typed, as ``--value`` is. The text area is a
    paste: browsers send its line breaks as CRLF, which become LF, and one
    trailing newline is dropped, as from stdin or a prompt.
    """
    if single_line and multi_line:
        raise UsageError("give the value in one field, not both; nothing was stored")
    if multi_line:
        return check_value(strip_one_newline(multi_line.replace("\r\n", "\n")))
    return check_value(single_line)


def set_secret(store: Store, keys: Keys, scope: Scope, name: str, value: str) -> tuple[str, bool]:
    """Set a secret as ``secretstore set`` does; (the CLI's message, identity created now)."""
    check_name(name)
    check_value(value)
    identity, created = keys.for_write()
    store.set(scope, name, value, identity)
    from secretstore.commands.secrets import record

    record(store, "ui set", scope, [name], identity)
    return f"Set {scope.entity} secret '{name}'", created


def require_listed(store: Store, scope: Scope, name: str) -> None:
    """Say 'no such secret' as ``secretstore delete`` does, before any key work."""
    check_name(name)
    if name not in {listed for listed, _updated in store.list(scope)}:
        raise NotFoundError(f"no {scope} secret {name!r} to delete")


def delete_secret(store: Store, keys: Keys, scope: Scope, name: str) -> str:
    """Delete a secret as ``secretstore delete`` does (and drop exec's snapshot of the scope)."""
    require_listed(store, scope, name)
    identity = keys.for_read()
    from secretstore.commands.secrets import delete_secret as delete

    delete(store, scope, name, identity)  # the CLI's own use case: snapshot dropped, audit line written
    return f"Deleted {scope.entity} secret '{name}'"


def describe_error(exc: BaseException) -> str:
    """A library error's message; an OS error's reason. Never a value: the library's
    messages hold none, and the form's input is never quoted."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    if isinstance(exc, OSError):
        return f"the operating system refused: {exc.strerror or type(exc).__name__}"
    return f"internal error: {type(exc).__name__}"
