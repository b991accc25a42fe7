"""What the page does, as calls into the library: the same rules, locks and checks as the CLI.

Nothing here reads or writes a store file: listing, setting and deleting go
through ``Store`` and the CLI's use cases (``commands.secrets``: delete,
versions, undelete, rollback, each with its audit line; the last two with the
version the user confirmed, checked under the store lock), precedence through
``context``, ``layers`` and ``precedence``, the audit log through ``audit``;
so every check the library makes (signatures and whom you trust, rollback,
unmerged files, MAC, recipients, file permissions, the store lock) applies to
the page as it does to the command line. Values come in from a form and go to
``Store.set``; none is ever returned from here (a version is listed by its
number, time and writer only).

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
from secretstore.store import TEAM, Scope, Store, VersionInfo, caller_public_key, version_tag

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.context import Context
    from secretstore.keys import PublicKey
    from secretstore.scopefile import Version

AUDIT_ROWS = 200  # the newest entries an audit page shows
AUDIT_NAMES = 12  # names shown per audit entry (an exec line names every secret it read)


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

    def me(self) -> PublicKey | None:
        """The caller's public key, for trust decisions and "you": the unlocked identity's,
        else the identity file's (no unlocking), else None."""
        with self._lock:
            if self._identity is not None:
                return self._identity.public
        return caller_public_key()

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


class Listed:
    """A name on the Secrets tab: when it last changed, and whether it needs a new value."""

    __slots__ = ("name", "rotate", "updated")

    def __init__(self, name: str, updated: str, rotate: bool = False) -> None:
        self.name = name
        self.updated = updated
        self.rotate = rotate


class Listing:
    """A scope's live names, and its deleted names whose history still holds a value."""

    __slots__ = ("deleted", "live")

    def __init__(self, live: list[Listed], deleted: list[Listed]) -> None:
        self.live = live
        self.deleted = deleted

    @property
    def rotate_needed(self) -> list[str]:
        return [row.name for row in self.live if row.rotate]


def scope_listing(store: Store, keys: Keys, scope: Scope) -> Listing:
    """What ``secretstore list --long`` knows, and the deleted names ``undelete`` can bring back.

    The file is parsed and verified (signature, whom you trust, not rolled
    back, not unmerged) as ``Store.list`` does before anything it says is used;
    no private key is needed. "Rotate needed" marks a live value a removed
    recipient could read (``doctor`` shows the same). A deleted name is kept in
    the file only with the value it had (FORMAT.md); a purge, or a store that
    keeps no history, drops the name instead.
    """
    file = store.load(scope)
    if file is None:
        return Listing([], [])
    store.verify(scope, file, keys.me())
    live, deleted = [], []
    for name in sorted(file.entries):
        entry = file.entries[name]
        if entry.current is not None:
            live.append(Listed(name, entry.updated, entry.rotate))
        else:
            deleted.append(Listed(name, entry.updated))
    return Listing(live, deleted)


class ScopeSummary:
    """A scope on the index: how many secrets it holds, or why that cannot be told."""

    __slots__ = ("count", "error", "rotate", "scope")

    def __init__(self, scope: Scope, count: int = 0, error: str = "", rotate: int = 0) -> None:
        self.scope = scope
        self.count = count
        self.error = error
        self.rotate = rotate


def scope_summaries(store: Store, keys: Keys) -> list[ScopeSummary]:
    """Team (always), then every project and cluster that has a file, with its count."""
    found = store.scopes()
    if TEAM not in found:
        found.insert(0, TEAM)
    summaries = []
    for scope in found:
        try:
            listing = scope_listing(store, keys, scope)
        except (SecretStoreError, OSError) as exc:  # one unreadable scope does not hide the others
            summaries.append(ScopeSummary(scope, error=describe_error(exc)))
        else:
            summaries.append(ScopeSummary(scope, len(listing.live), rotate=len(listing.rotate_needed)))
    return summaries


# --- a name's versions -------------------------------------------------------------


class Shown:
    """A writer as the page names it: a label (or "you"), a short key, the whole key."""

    __slots__ = ("key", "label", "short")

    def __init__(self, key: str, label: str) -> None:
        self.key = key
        self.label = label
        self.short = key[:16] + "..." if len(key) > 19 else key

    @classmethod
    def of(cls, key: str | None, label: str, me: PublicKey | None) -> Shown:
        if not key:
            return cls("", "")
        if me is not None and key == me.text:
            return cls(key, "you")
        return cls(key, label)


class VersionRow:
    __slots__ = ("number", "state", "updated", "writer")

    def __init__(self, info: VersionInfo, writer: Shown) -> None:
        self.number = info.number
        self.state = info.state  # current, deleted or previous
        self.updated = info.updated
        self.writer = writer


class History:
    """A name's versions, newest first (0 is its current value or its deletion); no value."""

    __slots__ = ("name", "rows", "scope")

    def __init__(self, scope: Scope, name: str, rows: list[VersionRow]) -> None:
        self.scope = scope
        self.name = name
        self.rows = rows

    @property
    def deleted(self) -> bool:
        return self.rows[0].state == "deleted"

    def version(self, number: int) -> VersionRow:
        """Version ``number`` (1 or more: one a rollback can go back to), in the library's words."""
        if not 0 <= number < len(self.rows):
            raise NotFoundError(
                f"{self.scope} secret {self.name!r} has no version {number} "
                f"(versions 0 to {len(self.rows) - 1} are kept)"
            )
        if number == 0:
            raise NotFoundError(
                f"version 0 of {self.scope} secret {self.name!r} is its "
                f"{'deletion' if self.deleted else 'current value'}: "
                "a rollback goes back to version 1 or older"
            )
        return self.rows[number]


def history(store: Store, keys: Keys, scope: Scope, name: str) -> History:
    """``secretstore history``: the versions of ``name`` without values, the file verified first."""
    from secretstore.commands import secrets

    check_name(name)
    me = keys.me()
    found = secrets.versions(store, scope, name)
    rows = [VersionRow(info, Shown.of(info.writer, store.label_of(info.writer or ""), me)) for info in found]
    return History(scope, name, rows)


class Restorable:
    """The version a rollback (or an undelete: version 1) would make the value again, as the
    file says now: what the confirmation shows, and the tag (``store.version_tag``) its POST
    hands to ``Store.rollback`` / ``Store.undelete``, checked there under the store lock."""

    __slots__ = ("number", "tag", "updated", "writer")

    def __init__(self, number: int, version: Version, writer: Shown) -> None:
        self.number = number
        self.updated = version.updated
        self.writer = writer
        self.tag = version_tag(version)


def restorable(store: Store, keys: Keys, scope: Scope, name: str, number: int, *,
               deleted_only: bool = False) -> Restorable | None:
    """Version ``number`` (1 or more) of ``name`` from the verified file, or None when there is
    none to restore (no store, file, name or such version; with ``deleted_only``, a name that is
    not deleted): the library then refuses in its own words. No private key is used."""
    from secretstore.layers import require_store

    check_name(name)
    require_store(store)
    file = store.load(scope)
    entry = None if file is None else file.entries.get(name)
    if file is None or entry is None:
        return None
    store.verify(scope, file, keys.me())
    if deleted_only and entry.current is not None:
        return None
    versions = [entry.current, *reversed(entry.history)]
    if not 1 <= number < len(versions):
        return None
    version = versions[number]
    if version is None:
        return None
    return Restorable(number, version, Shown.of(version.writer, store.label_of(version.writer or ""), keys.me()))


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
    from secretstore.commands.secrets import record_scopes

    # the values were decrypted (to know which scopes can be read), as exec --dry-run does: logged as a read
    record_scopes(store, "ui precedence", [(scope, sorted(values)) for scope, values in layers if values])
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


def undelete(store: Store, keys: Keys, scope: Scope, name: str, confirmed: str) -> str:
    """Bring a deleted name back as ``secretstore undelete`` does (its audit line, snapshot dropped),
    only if its version 1 is still the one tagged ``confirmed`` (what the page showed).

    ``Store.undelete`` verifies the file (signature, trust, not rolled back)
    before it says "not deleted" or "no such secret": the page says nothing a
    file from an untrusted writer claims. It checks ``confirmed`` under the store
    lock, in the write itself: ``errors.VersionChangedError`` when the version
    changed, and nothing is written or logged.
    """
    from secretstore.commands import secrets

    check_name(name)
    secrets.undelete(store, scope, name, keys.for_read(), expected=confirmed)
    return f"Undeleted {scope.entity} secret '{name}'"


def rollback(store: Store, keys: Keys, scope: Scope, name: str, number: int, confirmed: str) -> str:
    """Make version ``number`` the value again, as a new version, as ``secretstore rollback`` does,
    only if it is still the version tagged ``confirmed`` (checked by ``Store.rollback`` under the
    store lock: ``errors.VersionChangedError`` otherwise, nothing written or logged)."""
    from secretstore.commands import secrets

    check_name(name)
    secrets.rollback(store, scope, name, number, keys.for_read(), expected=confirmed)
    return f"Rolled {scope.entity} secret '{name}' back to version {number}, as a new version"


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


# --- the audit log ------------------------------------------------------------------


class AuditRow:
    """One line of the audit log as the page shows it: never a value (the log holds none)."""

    __slots__ = ("command", "detail", "more", "names", "scope", "time", "writer")

    def __init__(self, fields: dict[str, object], me: PublicKey | None) -> None:
        names = fields.get("names")
        listed = [str(name) for name in names] if isinstance(names, list) else []
        self.time = str(fields.get("time", ""))
        self.command = str(fields.get("command", ""))
        self.scope = str(fields.get("scope", ""))
        self.names = listed[:AUDIT_NAMES]
        self.more = len(listed) - len(self.names)
        count = fields.get("names_count")
        if fields.get("names_omitted") is True and isinstance(count, int):
            self.more = count  # too many to list in the log: only their count and digest are there
        self.detail = str(fields.get("detail", ""))
        key, label = fields.get("key"), fields.get("label")
        self.writer = Shown.of(key if isinstance(key, str) else "", label if isinstance(label, str) else "", me)


class AuditView:
    """The newest entries of this user's audit log for the store (or one scope, one name),
    with what ``secretstore audit --verify`` would report."""

    __slots__ = ("damaged", "enabled", "path", "problems", "rows", "total")

    def __init__(self) -> None:
        self.rows: list[AuditRow] = []  # newest first, at most AUDIT_ROWS
        self.total = 0  # entries that match
        self.damaged = 0  # lines that are not records (skipped)
        self.problems: list[str] = []  # breaks of the hash chain
        self.enabled = True
        self.path = ""


def audit_view(store: Store, keys: Keys, scope: Scope | None = None, name: str | None = None) -> AuditView:
    """The log read and its chain checked as ``secretstore audit`` and ``audit --verify`` do."""
    from secretstore import audit

    if name is not None:
        check_name(name)
    view = AuditView()
    view.enabled = audit.enabled()
    view.path = audit.log_path(store.root)
    me = keys.me()
    matching: list[dict[str, object]] = []
    for entry in audit.read(store.root):
        fields = entry.fields
        if fields is None:
            view.damaged += 1
            continue
        if fields.get("command") == "rotated":
            continue
        if scope is not None and fields.get("scope") != str(scope):
            continue
        if name is not None and not audit.mentions(fields, name):
            continue
        matching.append(fields)
    view.total = len(matching)
    view.rows = [AuditRow(fields, me) for fields in reversed(matching[-AUDIT_ROWS:])]
    view.problems = audit.verify(store.root)
    return view


def describe_error(exc: BaseException) -> str:
    """A library error's message; an OS error's reason. Never a value: the library's
    messages hold none, and the form's input is never quoted."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    if isinstance(exc, OSError):
        return f"the operating system refused: {exc.strerror or type(exc).__name__}"
    return f"internal error: {type(exc).__name__}"
