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
from dataclasses import dataclass

from secretstore import crypto, fsio, scopefile
from secretstore.errors import NotFoundError, NotRecipientError, StoreFormatError
from secretstore.identity import Identity, Recipient
from secretstore.rules import check_name, check_scope, check_value
from secretstore.scopefile import Entry, ScopeFile, SealedKey

_SCOPE_DIRS = {"project": "projects", "cluster": "clusters"}


@dataclass(frozen=True, order=True)
class Scope:
    entity: str
    scope_id: str | None = None

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
        return {name: self.get(name) for name in self.names()}

    def put(self, name: str, value: str, updated: str) -> bool:
        """Set ``name``; True when it is new (or was deleted)."""
        previous = self.file.entries.get(name)
        version = scopefile.encrypt(self.file, self.keys, name, value, updated)
        history = previous.history if previous is not None else ()
        self.file.entries[name] = Entry(version, updated, history)
        return previous is None or previous.current is None

    def remove(self, name: str) -> None:
        entry = self.file.entries.get(name)
        if entry is None or entry.current is None:
            raise NotFoundError(f"no {self.scope} secret {name!r} to delete")
        del self.file.entries[name]

    def to_bytes(self) -> bytes:
        return scopefile.seal(self.file, self.keys)


class Store:
    """A store directory. Library API: no printing, no prompting, no typer."""

    def __init__(self, root: str) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    def path(self, scope: Scope) -> str:
        return os.path.join(self.root, scope.relpath)

    # --- reading -----------------------------------------------------------

    def load(self, scope: Scope) -> ScopeFile | None:
        """Parse a scope file (no key needed), or None when the scope has no file."""
        data = fsio.read_file(self.path(scope))
        if data is None:
            return None
        file = scopefile.parse(data, scope.relpath)
        if (file.entity, file.scope_id) != (scope.entity, scope.scope_id):
            raise StoreFormatError(
                f"{scope.relpath}: file holds {scopefile.describe(file.entity, file.scope_id)} "
                f"secrets, not {scope} (moved or renamed?)"
            )
        return file

    def list(self, scope: Scope) -> list[tuple[str, str]]:
        """(name, updated) of each secret, sorted; needs no key."""
        file = self.load(scope)
        if file is None:
            return []
        return sorted((name, file.entries[name].updated) for name in file.live_names())

    def unlock_file(self, scope: Scope, file: ScopeFile, identity: Identity) -> UnlockedScope:
        mine = identity.public_text
        for stanza in file.recipients:
            if stanza.public_key == mine:
                data_key = identity.open_data_key(stanza.sealed_key, scope.relpath)
                break
        else:
            raise not_a_recipient(scope, identity)
        keys = crypto.FileKeys(data_key)
        scopefile.verify(file, keys, scope.relpath)
        return UnlockedScope(scope, file, keys)

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

    def scopes(self) -> list[Scope]:
        """Every scope that has a file, team first."""
        found = []
        if os.path.isfile(self.path(TEAM)):
            found.append(TEAM)
        for entity, directory in _SCOPE_DIRS.items():
            try:
                names = sorted(os.listdir(os.path.join(self.root, directory)))
            except FileNotFoundError:
                continue
            for filename in names:
                if filename.endswith(".toml") and not fsio.is_temp_name(filename):
                    scope_id = filename[: -len(".toml")]
                    if scope_id and not scope_id.startswith("."):
                        found.append(Scope(entity, scope_id))
        return found

    # --- writing -----------------------------------------------------------

    def default_recipients(self, identity: Identity) -> list[Recipient]:
        """Who a new scope file is sealed to: the writer."""
        return [identity.recipient]

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
        check_name(name)
        check_value(value)
        with fsio.locked(self.root):
            fsio.clean_stale_temps(os.path.dirname(self.path(scope)))
            unlocked = self.unlock(scope, identity) or self.new_scope(scope, identity)
            created = unlocked.put(name, value, now())
            self._write(unlocked)
        return created

    def delete(self, scope: Scope, name: str, identity: Identity) -> None:
        check_name(name)
        with fsio.locked(self.root):
            fsio.clean_stale_temps(os.path.dirname(self.path(scope)))
            unlocked = self.unlock(scope, identity)
            if unlocked is None:
                raise NotFoundError(f"no {scope} secret {name!r} to delete")
            unlocked.remove(name)
            self._write(unlocked)
