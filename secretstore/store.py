"""The store: a directory of scope files, and set / get / delete / list on it.

Every write is a read-modify-write under the store lock: the file is read,
its data key unsealed and its MAC verified (a tampered file is never
rewritten into a valid one), the change applied, and the whole file MAC'd
and atomically replaced. Reads take no lock; ``os.replace`` makes them see
the old or the new file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from secretstore import crypto, fsio, recipients, scopefile
from secretstore.errors import (
    NotFoundError,
    NotRecipientError,
    StoreFormatError,
    UsageError,
)
from secretstore.identity import Identity, Recipient
from secretstore.records import Record
from secretstore.rules import check_name, check_scope, check_value, is_valid_id
from secretstore.scopefile import Entry, ScopeFile, SealedKey

_SCOPE_DIRS = {"project": "projects", "cluster": "clusters"}


class Scope(Record):
    """team, or a project or cluster with its id. Sorts team first, then by entity and id."""

    __slots__ = ("entity", "scope_id")
    entity: str
    scope_id: str | None

    def __init__(self, entity: str, scope_id: str | None = None) -> None:
        self.entity = entity
        self.scope_id = scope_id

    def __lt__(self, other: Scope) -> bool:
        return (self.entity, self.scope_id or "") < (other.entity, other.scope_id or "")

    @classmethod
    def of(cls, entity: str, scope_id: str | None = None) -> Scope:
        """A validated scope: ``--id`` required for project and cluster, refused for team."""
        return cls(*check_scope(entity, scope_id))

    def __str__(self) -> str:
        return scopefile.describe(self.entity, self.scope_id)

    @property
    def relpath(self) -> str:
        if self.scope_id is None:
            return "team.toml"
        return f"{_SCOPE_DIRS[self.entity]}/{self.scope_id}.toml"


TEAM = Scope("team")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def not_a_recipient(scope: Scope, identity: Identity) -> NotRecipientError:
    return NotRecipientError(
        f"not a recipient of {scope}: ask an owner to run "
        f"secretstore recipients add {identity.public_text}"
    )


def unlock_file(scope: Scope, file: ScopeFile, identity: Identity, where: str = "") -> UnlockedScope:
    """Open the caller's sealed data key and verify the file MAC before anything is used."""
    where = where or scope.relpath
    mine = identity.public_text
    for stanza in file.recipients:
        if stanza.public_key == mine:
            data_key = identity.open_data_key(stanza.sealed_key, where)
            break
    else:
        raise not_a_recipient(scope, identity)
    keys = crypto.FileKeys(data_key)
    scopefile.verify(file, keys, where)
    return UnlockedScope(scope, file, keys)


class UnlockedScope:
    """A verified scope file and its keys: decrypts on demand, edits in memory."""

    def __init__(self, scope: Scope, file: ScopeFile, keys: crypto.FileKeys) -> None:
        self.scope = scope
        self.file = file
        self.keys = keys

    def __repr__(self) -> str:
        return f"UnlockedScope({self.scope}, {len(self.file.entries)} entries)"

    def names(self) -> list[str]:
        return self.file.live_names()

    def get(self, name: str) -> str:
        entry = self.file.entries.get(name)
        if entry is None or entry.current is None:
            raise NotFoundError(f"no {self.scope} secret {name!r}")
        return scopefile.decrypt(self.file, self.keys, name, entry.current, self.scope.relpath)

    def values(self) -> dict[str, str]:
        return scopefile.decrypt_live(self.file, self.keys, self.scope.relpath)

    def put(self, name: str, value: str, updated: str) -> bool:
        """Set ``name``; True when it is new (or was deleted)."""
        previous = self.file.entries.get(name)
        version = scopefile.encrypt(self.file, self.keys, name, value, updated)
        history = previous.history if previous is not None else ()
        self.file.entries[name] = Entry(version, updated, history)
        return previous is None or previous.current is None

    def remove(self, name: str, updated: str) -> None:
        """Delete ``name``'s value. Earlier versions kept in its history stay (FORMAT.md):
        the entry becomes a deleted one, which a later version can undelete."""
        entry = self.file.entries.get(name)
        if entry is None or entry.current is None:
            raise NotFoundError(f"no {self.scope} secret {name!r} to delete")
        if entry.history:
            self.file.entries[name] = Entry(None, updated, entry.history)
        else:
            del self.file.entries[name]

    def to_bytes(self) -> bytes:
        return scopefile.seal(self.file, self.keys)

    # --- recipients ----------------------------------------------------------

    def recipients(self) -> list[Recipient]:
        """Who can open this file, in document order."""
        return [Recipient.parse(s.public_key, s.label) for s in self.file.recipients]

    def has_recipient(self, recipient: Recipient) -> bool:
        return any(s.public_key == recipient.text for s in self.file.recipients)

    def add_recipient(self, recipient: Recipient) -> bool:
        """Seal this file's data key to ``recipient`` too; False when it already could open it.

        The other stanzas stay byte-for-byte as they were, so ``git diff``
        shows one new ``[[recipients]]`` block.
        """
        if self.has_recipient(recipient):
            return False
        self.file.recipients.append(
            SealedKey(recipient.text, recipient.seal(self.keys.data_key), recipient.label)
        )
        return True

    def rekey(self, to: list[Recipient]) -> None:
        """A fresh data key sealed to ``to``, and every value (history too) re-encrypted under it.

        Someone who kept the old data key learns nothing from the new file.
        """
        if not to:
            raise UsageError(f"{self.scope} would have no recipients left")
        old_keys, where = self.keys, self.scope.relpath
        new_keys = crypto.FileKeys(crypto.new_data_key())

        def reencrypt(name: str, version: scopefile.Version) -> scopefile.Version:
            plaintext = scopefile.decrypt(self.file, old_keys, name, version, where)
            return scopefile.encrypt(self.file, new_keys, name, plaintext, version.updated)

        entries = {}
        for name, entry in self.file.entries.items():
            current = None if entry.current is None else reencrypt(name, entry.current)
            history = tuple(reencrypt(name, version) for version in entry.history)
            entries[name] = Entry(current, entry.updated, history)
        self.file.entries = entries
        self.file.recipients = [
            SealedKey(r.text, r.seal(new_keys.data_key), r.label) for r in to
        ]
        self.keys = new_keys


def _holds(unlocked: UnlockedScope, name: str, value: str) -> bool:
    """Whether ``name``'s current value in ``unlocked`` is exactly ``value``."""
    entry = unlocked.file.entries.get(name)
    if entry is None or entry.current is None:
        return False
    return unlocked.get(name) == value


class SharingReport:
    """What a recipients or rotate command did, scope by scope."""

    __slots__ = ("changed", "skipped", "unchanged")

    def __init__(self) -> None:
        self.changed: list[Scope] = []
        self.unchanged: list[Scope] = []
        # Scopes the caller cannot open: (scope, the not-a-recipient message).
        self.skipped: list[tuple[Scope, str]] = []


# Aliases for annotations inside Store, whose ``list`` method shadows the builtin there.
Recipients = list[Recipient]
Scopes = list[Scope]
Unlocked = list[UnlockedScope]
Names = list[str]

# Crash-consistency tests kill a multi-scope rotation between two files here.
CRASH_BETWEEN_SCOPES = "between-scopes"


class Store:
    """A store directory. Library API: no printing, no prompting, no typer."""

    def __init__(self, root: str) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    def path(self, scope: Scope) -> str:
        return os.path.join(self.root, scope.relpath)

    # --- reading -----------------------------------------------------------

    def read_bytes(self, scope: Scope) -> bytes | None:
        """A scope file's bytes, or None when the scope has no file.

        A file that anyone but you could have written is refused (``fsio.read_store_file``):
        they could have replaced its values with their own, sealed to your public key.
        """
        self._refuse_symlinked_dir(scope)
        return fsio.read_store_file(self.root, scope.relpath)

    def parse(self, scope: Scope, data: bytes) -> ScopeFile:
        """Parse the bytes of ``scope``'s file, refusing a file that holds another scope."""
        file = scopefile.parse(data, scope.relpath)
        if (file.entity, file.scope_id) != (scope.entity, scope.scope_id):
            raise StoreFormatError(
                f"{scope.relpath}: file holds {scopefile.describe(file.entity, file.scope_id)} "
                f"secrets, not {scope} (moved or renamed?)"
            )
        return file

    def load(self, scope: Scope) -> ScopeFile | None:
        """Parse a scope file (no key needed), or None when the scope has no file."""
        data = self.read_bytes(scope)
        return None if data is None else self.parse(scope, data)

    def list(self, scope: Scope) -> list[tuple[str, str]]:
        """(name, updated) of each secret, sorted; needs no key."""
        file = self.load(scope)
        if file is None:
            return []
        return sorted((name, file.entries[name].updated) for name in file.live_names())

    def unlock_file(self, scope: Scope, file: ScopeFile, identity: Identity) -> UnlockedScope:
        return unlock_file(scope, file, identity)

    def unlock(self, scope: Scope, identity: Identity) -> UnlockedScope | None:
        """Unseal and verify a scope (one public-key operation), or None if it has no file."""
        file = self.load(scope)
        if file is None:
            return None
        return self.unlock_file(scope, file, identity)

    def read(self, scope: Scope, identity: Identity) -> dict[str, str]:
        """Every value of a scope; an absent scope is empty."""
        unlocked = self.unlock(scope, identity)
        return {} if unlocked is None else unlocked.values()

    def get(self, scope: Scope, name: str, identity: Identity) -> str:
        check_name(name)
        unlocked = self.unlock(scope, identity)
        if unlocked is None:
            raise NotFoundError(f"no {scope} secret {name!r}")
        return unlocked.get(name)

    def _refuse_symlinked_dir(self, scope: Scope) -> None:
        """A store is often a git checkout others write to: never follow a symlinked
        ``projects``/``clusters`` out of it (scope files themselves are opened without
        following links, see ``fsio.read_file``)."""
        if scope.scope_id is not None:
            directory = _SCOPE_DIRS[scope.entity]
            if os.path.islink(os.path.join(self.root, directory)):
                raise StoreFormatError(f"{directory}/ in the store is a symlink; refusing to follow it")

    def _clean_stale_temps(self, scope: Scope) -> None:
        """Remove a dead writer's temp files beside ``scope``'s file (under the lock)."""
        self._refuse_symlinked_dir(scope)
        fsio.clean_stale_temps(os.path.dirname(self.path(scope)))

    def scopes(self) -> Scopes:
        """Every scope that has a file, team first.

        Only regular files named like a scope count: a stray ``notes.md``, a
        ``a copy.toml`` or a symlink is not a scope, and must not stop a
        store-wide rotation or removal halfway.
        """
        found = []
        if os.path.isfile(self.path(TEAM)) and not os.path.islink(self.path(TEAM)):
            found.append(TEAM)
        for entity, directory in _SCOPE_DIRS.items():
            folder = os.path.join(self.root, directory)
            if os.path.islink(folder):
                continue
            try:
                names = sorted(os.listdir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for filename in names:
                scope_id = filename[: -len(".toml")]
                path = os.path.join(folder, filename)
                if (
                    filename.endswith(".toml")
                    and is_valid_id(scope_id)
                    and os.path.isfile(path)
                    and not os.path.islink(path)
                ):
                    found.append(Scope(entity, scope_id))
        return found

    # --- writing -----------------------------------------------------------

    @property
    def recipients_path(self) -> str:
        return os.path.join(self.root, recipients.FILENAME)

    def store_recipients(self) -> Recipients | None:
        """The store-wide list (``recipients.toml``), or None when the store has none.

        Checked like a scope file: whoever can write it chooses who new scope files are sealed to.
        """
        data = fsio.read_store_file(self.root, recipients.FILENAME)
        return None if data is None else recipients.parse(data, recipients.FILENAME)

    def default_recipients(self, identity: Identity) -> Recipients:
        """Who a new scope file is sealed to: the store's recipients, and the writer."""
        chosen = list(self.store_recipients() or [])
        if identity.recipient not in chosen:
            chosen.append(identity.recipient)
        return chosen

    def new_scope(self, scope: Scope, identity: Identity) -> UnlockedScope:
        data_key = crypto.new_data_key()
        stanzas = []
        for recipient in self.default_recipients(identity):
            stanzas.append(SealedKey(recipient.text, recipient.seal(data_key), recipient.label))
        file = ScopeFile(scope.entity, scope.scope_id, stanzas)
        return UnlockedScope(scope, file, crypto.FileKeys(data_key))

    def _write(self, unlocked: UnlockedScope) -> None:
        fsio.atomic_write(self.path(unlocked.scope), unlocked.to_bytes())

    def set(self, scope: Scope, name: str, value: str, identity: Identity) -> bool:
        """Store ``value`` under ``name``; True when the name is new in the scope."""
        return bool(self.set_many(scope, {name: value}, identity))

    def set_many(
        self, scope: Scope, values: dict[str, str], identity: Identity, unchanged: Names | None = None
    ) -> Names:
        """Set every name in ``values`` in ONE atomic write; returns the names that are new.

        Every name and value is checked first, so one bad pair writes nothing.
        A name whose current value is already exactly the one given is left
        as it is (its entry keeps its bytes and time), and a call that
        changes nothing writes nothing: re-importing the same file causes no
        git churn. Such names are appended to ``unchanged`` when it is given.
        """
        for name, value in values.items():
            check_name(name)
            try:
                check_value(value)
            except UsageError as exc:
                if len(values) == 1:
                    raise
                raise UsageError(f"secret {name}: {exc.message}") from None
        created: Names = []
        with fsio.locked(self.root):
            self._clean_stale_temps(scope)
            existing = self.unlock(scope, identity)
            unlocked = existing or self.new_scope(scope, identity)
            stamp = now()
            changed = existing is None
            for name, value in values.items():
                if existing is not None and _holds(existing, name, value):
                    if unchanged is not None:
                        unchanged.append(name)
                    continue
                changed = True
                if unlocked.put(name, value, stamp):
                    created.append(name)
            if changed:
                self._write(unlocked)
        return created

    def delete(self, scope: Scope, name: str, identity: Identity) -> None:
        check_name(name)
        with fsio.locked(self.root):
            self._clean_stale_temps(scope)
            unlocked = self.unlock(scope, identity)
            if unlocked is None:
                raise NotFoundError(f"no {scope} secret {name!r} to delete")
            unlocked.remove(name, now())
            self._write(unlocked)

    # --- recipients and rotation ---------------------------------------------

    def _each_scope(
        self, scope: Scope | None, identity: Identity, report: SharingReport
    ) -> Unlocked:
        """The scopes a recipients or rotate command applies to, unlocked; unopenable ones are skipped."""
        unlocked: Unlocked = []
        targets: Scopes = [scope] if scope is not None else self.scopes()
        for each in targets:
            try:
                opened = self.unlock(each, identity)
            except NotRecipientError as exc:
                report.skipped.append((each, exc.message))
                continue
            if opened is not None:
                unlocked.append(opened)
        return unlocked

    def add_recipient(
        self, recipient: Recipient, identity: Identity, scope: Scope | None = None
    ) -> SharingReport:
        """Let ``recipient`` read one scope (created empty if absent), or the whole store.

        Store-wide, every scope file the caller can open gets a sealed copy of
        its data key, and ``recipients.toml`` lists the key so new scope files
        include it (the caller is listed too when the file is first made).
        """
        report = SharingReport()
        with fsio.locked(self.root):
            if scope is not None and self.load(scope) is None:
                self._clean_stale_temps(scope)
                created = self.new_scope(scope, identity)
                created.add_recipient(recipient)
                self._write(created)
                report.changed.append(scope)
                return report
            # Read recipients.toml before writing anything: a refused one must leave every file as it was.
            listed = self.store_recipients() if scope is None else None
            for unlocked in self._each_scope(scope, identity, report):
                if unlocked.add_recipient(recipient):
                    self._write(unlocked)
                    report.changed.append(unlocked.scope)
                else:
                    report.unchanged.append(unlocked.scope)
            if scope is None:
                if listed is None:
                    listed = [identity.recipient]
                known = next((r for r in listed if r == recipient), None)
                if known is None or (recipient.label and known.label != recipient.label):
                    others = [r for r in listed if r != recipient]  # a new key, or a new label
                    recipients.save(self.recipients_path, [*others, recipient])
        if scope is not None and report.skipped:
            raise NotRecipientError(report.skipped[0][1])
        return report

    def remove_recipient(
        self, recipient: Recipient, identity: Identity, scope: Scope | None = None
    ) -> SharingReport:
        """Stop ``recipient`` reading one scope, or the whole store.

        Each file it could open gets a new data key and every value is
        re-encrypted, since a removed reader may have kept the old key.
        """
        if recipient == identity.recipient:
            raise UsageError(
                "refusing to remove your own key: you would lose access to what you remove it from",
                hint="ask another recipient to remove you",
            )
        report = SharingReport()
        with fsio.locked(self.root):
            if scope is not None and self.load(scope) is None:
                raise NotFoundError(f"{scope} has no secrets file, so no recipients")
            listed = self.store_recipients() if scope is None else None  # before any write, as above
            for unlocked in self._each_scope(scope, identity, report):
                if not unlocked.has_recipient(recipient):
                    report.unchanged.append(unlocked.scope)
                    continue
                unlocked.rekey([r for r in unlocked.recipients() if r != recipient])
                self._write(unlocked)
                report.changed.append(unlocked.scope)
            if scope is None and listed is not None and recipient in listed:
                recipients.save(self.recipients_path, [r for r in listed if r != recipient])
        if scope is not None and not report.changed:
            if report.skipped:
                raise NotRecipientError(report.skipped[0][1])
            raise NotFoundError(f"{recipient.text} is not a recipient of {scope}")
        return report

    def rotate(
        self,
        scopes: Scopes | None,
        identity: Identity,
        progress: Callable[[Scope], None] | None = None,
    ) -> SharingReport:
        """Give each scope (None: every scope) a new data key and re-encrypt every value.

        Each file is replaced atomically with its new data key sealed inside
        it, so a crash at any point leaves every file old or new, each readable.
        """
        report = SharingReport()
        with fsio.locked(self.root):
            targets: Scopes = self.scopes() if scopes is None else scopes
            for index, scope in enumerate(targets):
                if index:
                    fsio._crash_point(CRASH_BETWEEN_SCOPES)
                self._clean_stale_temps(scope)
                for unlocked in self._each_scope(scope, identity, report):
                    unlocked.rekey(unlocked.recipients())
                    self._write(unlocked)
                    report.changed.append(scope)
                if progress is not None:
                    progress(scope)
        return report
