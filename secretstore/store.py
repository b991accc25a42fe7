"""The store: a directory of scope files and its roster; set / get / delete / list and sharing on it.

Every read of a scope file checks, in this order (FORMAT.md, "Reading"):
who may write it (permissions), its shape, the writer's signature, whether
this reader trusts that writer for that scope and has not seen a newer
version (``trust.py``), then the identity's stanza and the MAC, before any
value is decrypted. Every write is a read-modify-write under the store lock:
the file is read and verified that way (a tampered or untrusted file is
never rewritten into a valid one), changed, then signed by the writer with
the next counter and atomically replaced. Reads take no lock; ``os.replace``
makes them see the old or the new file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from secretstore import crypto, envelope, fsio, limits, recipients, scopefile
from secretstore.errors import (
    NotFoundError,
    NotRecipientError,
    RollbackError,
    SecretStoreError,
    StoreFormatError,
    TrustError,
    UsageError,
    VersionChangedError,
)
from secretstore.keys import Identity, PublicKey
from secretstore.recipients import Member, Roster, scope_tag
from secretstore.records import Record
from secretstore.rules import check_name, check_scope, check_value, is_valid_id
from secretstore.scopefile import Entry, ScopeFile
from secretstore.trust import State, Trust, load_state

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.snapshot import Listings, Snapshots

_SCOPE_DIRS = {"project": "projects", "cluster": "clusters"}
DEFAULT_HISTORY = 10  # previous values kept per name, unless the roster says otherwise


def _warning(message: str) -> None:
    from secretstore.console import warning_line

    warning_line(message)


_Parts = list[fsio.Part]  # (``Store.list`` hides the builtin in the class body)


_UNDELETE_MISSING = "no {scope} secret {name!r} to undelete (never set, purged, or its history was dropped)"


def version_tag(version: scopefile.Version) -> str:
    """What tells one stored version from every other: a digest of its time, writer, nonce and
    ciphertext (each encryption has its own random nonce). Not secret: the file holds all four.
    ``Store.rollback`` and ``Store.undelete`` take one as ``expected``."""
    import hashlib

    digest = hashlib.sha256(b"secretstore ui version\0")
    for part in (version.updated.encode("utf-8"), (version.writer or "").encode("utf-8"),
                 version.nonce, version.ciphertext):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _check_expected(one: UnlockedScope, name: str, number: int, expected: str) -> None:
    """VersionChangedError when version ``number`` of ``name`` in ``one`` (read under the lock) is
    not the one tagged ``expected``. A version that is not there at all is left for the caller
    to refuse in its own words ("has no version K", "its deletion")."""
    import hmac

    versions = one.versions(name)
    version = versions[number] if 0 <= number < len(versions) else None
    if version is None:
        return
    if not hmac.compare_digest(version_tag(version).encode("ascii"), expected.encode("utf-8", "surrogatepass")):
        raise VersionChangedError(
            f"version {number} of {one.scope} secret {name!r} is no longer the one expected "
            "(it changed since it was read): nothing was changed",
            hint="read its versions again ('secretstore history') and choose the version again",
        )


def _check_deleted(scope: Scope, name: str, entry: Entry | None) -> None:
    """What ``undelete`` says of a name it cannot bring back."""
    if entry is None:
        raise NotFoundError(_UNDELETE_MISSING.format(scope=scope, name=name))
    if entry.current is not None:  # a state, not a bad command line: exit 1 like a missing name
        raise SecretStoreError(f"{scope} secret {name!r} is not deleted: it has a current value",
                               hint="'secretstore history' lists its versions; 'secretstore rollback --to K' "
                               "brings an older one back")


def _written_head(parts: _Parts) -> scopefile.Head | None:
    """The head of a file about to be written as ``parts``, for list's cache: version 3's first
    two parts (the lines before ``signature``, then ``signature`` and ``mac``); version 4's
    first (its head) and last two (its seal)."""
    first = parts[0]
    assert not isinstance(first, fsio.FileRange)  # the head: always bytes
    if bytes(first[: len(scopefile.V4_START)]) == scopefile.V4_START:
        return scopefile.sealed_head(first, fsio.join(parts[-2:]))
    return scopefile.head_of(fsio.join(parts[:2]) + b"\n")


def _kept(entry: Entry, keep: int) -> tuple[scopefile.Version, ...]:
    """``entry``'s history after its current value (if any) joins it: the newest ``keep`` versions."""
    versions = entry.history if entry.current is None else (*entry.history, entry.current)
    return tuple(versions[-keep:]) if keep > 0 else ()


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

    @property
    def tag(self) -> str:
        """How the roster names this scope (``team``, ``project:ID``)."""
        return scope_tag(self.entity, self.scope_id)


TEAM = Scope("team")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def least_privilege_hint(scope: Scope, public_text: str) -> str:
    """The command an owner runs to let ``public_text`` read ``scope`` and nothing more."""
    flag = "--team" if scope.scope_id is None else f"--{scope.entity} {scope.scope_id}"
    return f"ask an owner to run: secretstore recipients add {public_text} {flag}"


def not_a_recipient(scope: Scope, identity: Identity) -> NotRecipientError:
    return NotRecipientError(
        f"not a recipient of {scope}", hint=least_privilege_hint(scope, identity.public_text)
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
        return scopefile.decrypt_live(self.file, self.keys, self.scope.relpath)

    def put(self, name: str, value: str, updated: str, writer: str | None = None,
            keep: int = DEFAULT_HISTORY, *, restored: bool = False) -> bool:
        """Set ``name``; True when it is new (or was deleted).

        The value it replaces joins the name's history (the newest ``keep``
        previous values are kept). A new value clears "rotate needed"; a
        ``restored`` one (rollback, undelete: an old value brought back) keeps it.
        """
        previous = self.file.entries.get(name)
        version = scopefile.encrypt(self.file, self.keys, name, value, updated, writer)
        history = () if previous is None else _kept(previous, keep)
        rotate = restored and previous is not None and previous.rotate
        self.file.entries[name] = Entry(version, updated, history, writer, rotate)
        return previous is None or previous.current is None

    def remove(self, name: str, updated: str, writer: str | None = None, keep: int = DEFAULT_HISTORY,
               *, purge: bool = False) -> None:
        """Delete ``name``'s value: it joins the name's history, and the entry becomes a deleted
        one that ``undelete`` brings back while its history lasts. ``purge`` drops the name
        and every version of it instead (a value that leaked)."""
        entry = self.file.entries.get(name)
        if entry is None or (entry.current is None and not purge):
            raise NotFoundError(f"no {self.scope} secret {name!r} to delete")
        history = () if purge else _kept(entry, keep)
        if history:
            self.file.entries[name] = Entry(None, updated, history, writer, entry.rotate)
        else:
            del self.file.entries[name]

    def versions(self, name: str) -> list[scopefile.Version | None]:
        """``name``'s versions, newest first: [current (None when deleted), previous, ...]."""
        entry = self.file.entries.get(name)
        if entry is None:
            raise NotFoundError(f"no {self.scope} secret {name!r}")
        return [entry.current, *reversed(entry.history)]

    def version_value(self, name: str, number: int) -> str:
        """The value of version ``number`` of ``name`` (0: the current one, 1: the one before...)."""
        versions = self.versions(name)
        if not 0 <= number < len(versions):
            raise NotFoundError(
                f"{self.scope} secret {name!r} has no version {number} "
                f"(versions 0 to {len(versions) - 1} are kept)"
            )
        version = versions[number]
        if version is None:
            raise NotFoundError(f"version 0 of {self.scope} secret {name!r} is its deletion: it has no value")
        return scopefile.decrypt(self.file, self.keys, name, version, self.scope.relpath)

    # --- recipients ----------------------------------------------------------

    def recipients(self) -> list[PublicKey]:
        """Who can open this file, in document order."""
        return [PublicKey.decode(s.public_key, s.label) for s in self.file.recipients]

    def has_recipient(self, recipient: PublicKey) -> bool:
        return any(PublicKey.decode(s.public_key) == recipient for s in self.file.recipients)

    def add_recipient(self, recipient: PublicKey) -> bool:
        """Seal this file's data key to ``recipient`` too; False when nothing changed.

        The other stanzas stay byte-for-byte as they were, so ``git diff``
        shows one new ``[[recipients]]`` block. A stanza naming the same reader
        with 0.1's ``ssk1`` key is rewritten in place with the ``ssk2`` key.
        """
        for index, stanza in enumerate(self.file.recipients):
            if PublicKey.decode(stanza.public_key) == recipient:
                if not recipient.can_sign or stanza.public_key == recipient.text:
                    return False  # labels live in the roster: relabelling touches no scope file
                # the same reader's 0.1 (ssk1) key: name its current key, with the same sealed copy
                self.file.recipients[index] = scopefile.SealedKey(recipient.text, stanza.sealed_key, stanza.label)
                return True
        self.file.recipients.append(envelope.stanza(recipient, self.keys))
        return True

    def rekey(self, to: list[PublicKey]) -> None:
        """A fresh data key sealed to ``to``, and every value (history too) re-encrypted under it.

        Someone who kept the old data key learns nothing from the new file.
        """
        if not to:
            raise UsageError(f"{self.scope} would have no recipients left")
        new_keys = envelope.new_keys()
        self.file.entries = envelope.reencrypt(self.file, self.keys, new_keys, self.scope.relpath)
        self.file.recipients = envelope.stanzas(to, new_keys)
        self.keys = new_keys


def _holds(unlocked: UnlockedScope, name: str, value: str) -> bool:
    """Whether ``name``'s current value in ``unlocked`` is exactly ``value``."""
    entry = unlocked.file.entries.get(name)
    if entry is None or entry.current is None:
        return False
    return unlocked.get(name) == value


class VersionInfo(Record):
    """One version of a name as ``history`` shows it: never its value."""

    __slots__ = ("number", "updated", "writer", "state")
    number: int
    updated: str
    writer: str | None
    state: str  # current, deleted or previous

    def __init__(self, number: int, updated: str, writer: str | None, state: str) -> None:
        self.number = number
        self.updated = updated
        self.writer = writer
        self.state = state


class SharingReport:
    """What a recipients, rotate or upgrade command did, scope by scope."""

    __slots__ = ("changed", "exposed", "roster", "skipped", "unchanged")

    def __init__(self) -> None:
        self.changed: list[Scope] = []
        self.unchanged: list[Scope] = []
        # Scopes the caller cannot open: (scope, the not-a-recipient message).
        self.skipped: list[tuple[Scope, str]] = []
        self.roster = False  # recipients.toml was rewritten
        # After a removal: the names (current or past values) the removed key could read, per scope.
        self.exposed: list[tuple[Scope, list[str]]] = []


class UpgradeFile(Record):
    """A 0.1 scope file ``upgrade`` would sign: what it shows first (names, never a value) and a
    digest of the bytes it was read from, so what is signed is exactly what was shown."""

    __slots__ = ("deleted", "digest", "names", "recipients", "scope")
    scope: Scope
    names: list[str]  # live names, sorted
    deleted: int  # names deleted (history only)
    recipients: list[str]  # the stanzas' keys, with their labels ("ssk1... (bob)")
    digest: bytes

    def __init__(self, scope: Scope, names: list[str], deleted: int, recipients: list[str], digest: bytes) -> None:
        self.scope = scope
        self.names = names
        self.deleted = deleted
        self.recipients = recipients
        self.digest = digest


class UpgradePlan:
    """What ``Store.upgrade`` would sign as the caller (``Store.upgrade_plan``), shown before it runs."""

    __slots__ = ("files", "roster", "roster_digest", "skipped", "unchanged")

    def __init__(self) -> None:
        self.files: list[UpgradeFile] = []  # 0.1 files the caller can open (MAC checked)
        self.skipped: list[tuple[Scope, str]] = []  # 0.1 files the caller cannot open
        self.unchanged: list[Scope] = []  # already signed
        # The 0.1 roster's members, who become store-wide members vouched for by the caller; None: no 0.1 roster.
        self.roster: list[Member] | None = None
        self.roster_digest = b""

    @property
    def empty(self) -> bool:
        """Nothing to sign."""
        return not self.files and self.roster is None

    def fingerprint(self) -> tuple[object, ...]:
        """What was shown: the files to sign (by path and bytes) and the roster's bytes."""
        return tuple((f.scope.relpath, f.digest) for f in self.files), self.roster_digest


# Aliases for annotations inside Store, whose ``list`` method shadows the builtin there.
Recipients = list[PublicKey]
Scopes = list[Scope]
Unlocked = list[UnlockedScope]
Names = list[str]
Versions = list[VersionInfo]
Listing = list[tuple[str, str, str | None, bool]]

# Crash-consistency tests kill a multi-scope rotation between two files here.
CRASH_BETWEEN_SCOPES = "between-scopes"


def caller_public_key() -> PublicKey | None:
    """The caller's public key without unlocking anything; None when there is no identity.

    A 0.1 passphrase-protected identity names only its reading key until it is
    unlocked once; then its writes cannot be told apart from a forgery here, so
    it counts as no key (the commands that unlock it do better).
    """
    from secretstore.errors import IdentityError
    from secretstore.identity import read_key

    try:
        key = read_key()
    except IdentityError as exc:
        if exc.message.startswith("no identity at "):
            return None
        raise
    public = key.public
    return public if public.can_sign else None


class Store:
    """A store directory. Library API: no printing (but trust notices), no prompting, no typer.

    ``strict``: an unverifiable writer (``SECRETSTORE_KEY`` without
    ``SECRETSTORE_TRUST``) is an error instead of a warning.
    """

    def __init__(
        self, root: str, *, strict: bool = False, emit: Callable[[str], None] | None = None,
        listing_dir: str | None = None,
    ) -> None:
        self.root = root
        self.strict = strict
        self.listing_dir = listing_dir  # list's cache (``paths.listing_dir()``): read by listing, kept by writes
        self._emit = emit
        self._trusts: dict[bytes | None, Trust] = {}
        self._state: State | None = None
        # relpath -> the newest version the state knew just before the file's bytes were read
        self._baseline: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    def path(self, scope: Scope) -> str:
        return os.path.join(self.root, scope.relpath)

    def exists(self) -> bool:
        return os.path.isdir(self.root)

    # --- trust -----------------------------------------------------------------

    def state(self) -> State:
        """This user's trust state for the store (loaded once; see ``_before_reading``)."""
        if self._state is None:
            self._state = load_state(self.root)
        return self._state

    def _before_reading(self, relpath: str) -> None:
        """Bring the state up to date and note the newest version of ``relpath`` it knows.

        A file is checked against what the state said *before* its bytes were read: a
        version another process wrote and recorded meanwhile is newer than that, never
        older, so concurrent writers are not mistaken for a rollback.
        """
        if self._state is None:
            self._state = load_state(self.root)
        else:
            self._state.refresh()
        self._baseline[relpath] = self._state.counters.get(relpath, 0)

    def trust(self, me: PublicKey | None) -> Trust:
        """This reader's trust in the store (one per key, kept for the command)."""
        key = None if me is None else me.box_key
        found = self._trusts.get(key)
        if found is None:
            found = Trust(
                self.root, me, self.read_roster_bytes, strict=self.strict, emit=self._emit,
                scan_signers=self.signers, state=self.state(), baseline=self._baseline,
            )
            self._trusts[key] = found
        return found

    def label_of(self, key: str) -> str:
        """A label for a public key from what this user already knows (the trust state, the
        roster it accepted): for messages and the audit log; "" when none is known."""
        label = self.state().writers.get(key, {}).get("label", "")
        if label:
            return label
        labels = self.state().roster.get("labels")
        found = labels.get(key, "") if isinstance(labels, dict) else ""
        return found if isinstance(found, str) else ""

    def read_roster_bytes(self) -> bytes | None:
        """``recipients.toml``'s bytes, refused like a scope file if anyone but you could have written it."""
        self._before_reading(recipients.FILENAME)
        return fsio.read_store_file(self.root, recipients.FILENAME)

    def roster(self, me: PublicKey | None) -> Roster | None:
        """The roster, accepted by ``me``'s trust (signed by a trusted member, not rolled back)."""
        return self.trust(me).roster()

    def signers(self) -> dict[str, str]:
        """Every writer key that signed a file of this store -> a label from that file. No checks."""
        found: dict[str, str] = {}
        for relpath in [recipients.FILENAME, *(scope.relpath for scope in self.scopes())]:
            try:
                data = fsio.read_store_file(  # all signer_of reads (a version-4 file's signer: in its last seal)
                    self.root, relpath, prefix=limits.SIGNER_BYTES,
                    suffix=0 if relpath == recipients.FILENAME else scopefile.SEAL_BYTES)
            except SecretStoreError:
                continue
            if data is not None:
                signer = scopefile.signer_of(data) if relpath != recipients.FILENAME else recipients.signer_of(data)
                if signer is not None:
                    found.setdefault(signer[0], signer[1])
        return found

    # --- reading -----------------------------------------------------------

    def read_bytes(
        self, scope: Scope, *, prefix: int | None = None, until: bytes | None = None, suffix: int = 0
    ) -> bytes | None:
        """A scope file's bytes (``prefix``, ``until``: only its start, see ``fsio.read_store_file``),
        or None when the scope has no file.

        A file that anyone but you could have written is refused (``fsio.read_store_file``):
        they could have replaced it with one of their own, sealed to your public key.
        """
        self._refuse_symlinked_dir(scope)
        self._before_reading(scope.relpath)
        return fsio.read_store_file(self.root, scope.relpath, prefix=prefix, until=until, suffix=suffix)

    def read_current(self, scope: Scope) -> bytes | None:
        """A scope file's bytes without its history, or None: a version-3 file's up to its
        history; a version-4 file's up to its history, then its sections (from the ``base``
        its last seal gives); other files whole.

        For readers of current values (list, get, exec, export): the history can be
        most of a file, and they never use it. Parse the result with
        ``parse(..., body_only=True)``. A version-4 file that does not end with a seal
        (a section being written, or cut short) is read from its last whole seal's
        ``base``, found from its end; without one, whole, and its body-only parse fails
        over to the whole file's (``parse``).
        """
        data, tail = self._read_start(scope)
        if data is None or tail is None:
            return data
        try:
            if not data.startswith(scopefile.V4_START):
                return data  # the history is not needed
            at = max(tail.size - scopefile.SEAL_BYTES, len(data))
            seal = scopefile.last_seal(tail.pread(at, tail.size - at))
            if seal is not None and len(data) <= seal[0] <= tail.size:
                return data + tail.pread(seal[0], tail.size - seal[0])
            # Not ending with a seal (an append cut short): the sections from the last whole seal's
            # base, found from the end, without reading the history; else the file whole.
            at = max(tail.size - scopefile.MAX_UNSEALED_BYTES - scopefile.SEAL_BYTES, len(data))
            base = scopefile.base_before(tail.pread(at, tail.size - at))
            if base is not None and len(data) <= base <= tail.size:
                return data + tail.pread(base, tail.size - base)
            return data + tail.pread(len(data), tail.size - len(data))
        finally:
            tail.close()

    def _read_start(self, scope: Scope) -> tuple[bytes | None, fsio.OpenFile | None]:
        """A version-3 file's bytes up to its history and the file, kept open when it has any
        (``fsio.read_store_file(keep=...)``); a version 1 or 2 file whole (its history is
        inline), read through the same descriptor."""
        kept: list[fsio.OpenFile] = []
        self._refuse_symlinked_dir(scope)
        self._before_reading(scope.relpath)
        data = fsio.read_store_file(self.root, scope.relpath, until=scopefile.BODY_END, keep=kept)
        tail = kept[0] if kept else None
        if data is not None and tail is not None and not (
            data.startswith(scopefile.V3_START) or data.startswith(scopefile.V4_START)
        ):
            data += tail.pread(len(data), tail.size - len(data))
            tail.close()
            tail = None
        return data, tail

    def parse(
        self, scope: Scope, data: bytes, *, body_only: bool = False, tail: fsio.OpenFile | None = None
    ) -> ScopeFile:
        """Parse the bytes of ``scope``'s file, refusing a file that holds another scope.

        ``body_only``: ``data`` is what ``read_current`` gave; a file it cannot read is
        read again whole, so the error is the whole file's (not one about a cut-off part).
        ``tail``: the file, still open, whose body ``data`` is (``load``).
        """
        try:
            file = scopefile.parse(data, scope.relpath, body_only=body_only, tail=tail)
        except SecretStoreError:
            if not body_only:
                raise
            file = scopefile.parse(self.read_bytes(scope) or b"", scope.relpath)
        if (file.entity, file.scope_id) != (scope.entity, scope.scope_id):
            raise StoreFormatError(
                f"{scope.relpath}: file holds {scopefile.describe(file.entity, file.scope_id)} "
                f"secrets, not {scope} (moved or renamed?)"
            )
        return file

    def load(self, scope: Scope) -> ScopeFile | None:
        """Parse a scope file (no key needed, no trust decided), or None when the scope has no file.

        A version-3 file's history is not read into memory: the file stays open
        (``fsio.OpenFile``), a name's earlier versions are read from it when used,
        and a write copies the history it carries over file to file in the kernel.
        At 10,000 secrets with 10 versions each that is 28 of the file's 31 MB.
        """
        data, tail = self._read_start(scope)
        return None if data is None else self.parse(scope, data, tail=tail)

    def verify(
        self, scope: Scope, file: ScopeFile, me: PublicKey | None, where: str = "", *, check_counter: bool = True
    ) -> bytes | None:
        """The writer's signature and ``me``'s trust in it (FORMAT.md, "Trust"); TrustError or
        TamperedError when refused (a 0.1 file, unsigned, always is). Returns ``mac_input`` for reuse.

        ``check_counter=False`` is for the merge driver, whose two sides are branches:
        each is checked against their common ancestor instead.
        """
        where = where or scope.relpath
        trust = self.trust(me)
        if not file.signed:
            trust.check_unsigned(where)  # raises: nothing vouches for a 0.1 file's writer
        body = envelope.check_signature(file, where)
        tag = scope_tag(file.entity, file.scope_id)
        try:
            trust.check_signed(
                where, tag, file.store_id, file.counter, file.signer, _stanza_label(file, file.signer),
                check_counter=check_counter,
            )
        except RollbackError as exc:
            if not file.unsealed:
                raise
            raise RollbackError(  # no copy put back: its last section was cut off
                f"{where} ends in {file.unsealed} byte(s) after its last seal (a section cut short: the file "
                f"was truncated, or a write interrupted), so it holds version {file.counter}, older than one "
                "you already read; refusing to use it",
                hint="restore the file from git (git checkout -- FILE; git log -- FILE); "
                "'secretstore accept-revert' would give up the newer version",
            ) from exc
        return body

    def list(self, scope: Scope, me: PublicKey | None = None) -> list[tuple[str, str]]:
        """(name, updated) of each secret, sorted; needs no private key.

        The file is verified (signature and trust) with ``me`` (default: the
        caller's public key), so the names are the ones a trusted writer wrote.
        """
        return [(name, updated) for name, updated, _writer, _rotate in self.listing(scope, me)]

    def listing(self, scope: Scope, me: PublicKey | None = None, listings: Listings | None = None) -> Listing:
        """(name, updated, writer, rotate needed) of each live secret, sorted; verified as ``list``.

        ``listings``: list's cache (``snapshot.Listings``). A file whose head is one
        already verified gives that verification's rows, after the head's writer
        is checked again (as exec's snapshots are, ``from_snapshot``); only the
        head is read. A miss reads and verifies the file, and keeps its rows.
        """
        me = caller_public_key() if me is None else me
        listings = listings if listings is not None else self._listings()
        if listings is not None:
            first = self.read_head(scope)
            if first is None:
                return []
            head = scopefile.head_of(first)
            cached = None if head is None else listings.load(scope, head.key)
            if head is not None and cached is not None:
                self._check_head(scope, head, me)
                return cached
        data = self.read_current(scope)
        if data is None:
            return []
        quick = self._quick(scope, data)  # version 3: no value decoded
        if quick is not None:
            file, rows = quick
            self.verify(scope, file, me)
            found = [(name, updated, writer, rotate) for name, updated, writer, _n, _c, rotate in rows]
        else:
            file = self.parse(scope, data, body_only=True)
            self.verify(scope, file, me)
            found = []
            for name in sorted(file.live_names()):
                entry = file.entries[name]
                found.append((name, entry.updated, entry.writer, entry.rotate))
        if listings is not None:
            head = scopefile.head_of(data)  # of the bytes verified, not of the first read
            if head is not None:
                listings.save(scope, head.key, found)
        return found

    def unlock_file(
        self, scope: Scope, file: ScopeFile, identity: Identity, where: str = "", *, check_counter: bool = True
    ) -> UnlockedScope:
        """Verify the writer, open the caller's stanza and check the MAC before anything is used."""
        where = where or scope.relpath
        body = self.verify(scope, file, identity.public, where, check_counter=check_counter)
        keys = envelope.unwrap(file, identity, where)
        if keys is None:
            raise not_a_recipient(scope, identity)
        envelope.verify_mac(file, keys, where, body)
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

    def read_head(self, scope: Scope) -> bytes | None:
        """The first bytes of a scope file (enough for its head), or None when the scope has no file.

        The same checks as ``read_bytes``; exec's snapshot needs no more of the file.
        """
        return self.read_bytes(scope, prefix=scopefile.HEAD_BYTES, suffix=scopefile.SEAL_BYTES)

    def from_snapshot(self, scope: Scope, data: bytes, identity: Identity, snapshots: Snapshots) -> dict[str, str] | None:
        """The values of exec's snapshot of a file with ``data``'s head, if one opens and the writer still counts.

        ``data`` is the file's bytes, or only its first ``scopefile.HEAD_BYTES``.
        A snapshot holds what a full read of a file with this head gave (its
        signature and MAC cover every other field), so nothing needs work
        again but whether this reader still trusts the writer and has not read
        a newer version since, which is decided again from the head.
        """
        head = scopefile.head_of(data)
        if head is None:
            return None  # a file this reader cannot place from its head (unmerged, hand-edited): read it in full
        values = snapshots.load(scope, head.key)
        if values is None:
            return None
        self._check_head(scope, head, identity.public)
        return values

    def _listings(self) -> Listings | None:
        if self.listing_dir is None:
            return None
        from secretstore.snapshot import Listings

        return Listings(self.listing_dir, self.root)

    def _check_head(self, scope: Scope, head: scopefile.Head, me: PublicKey | None) -> None:
        """Whether ``me`` still trusts the writer of a head verified before, and has not
        read a newer version since (for a snapshot or a cached listing)."""
        trust = self.trust(me)
        if head.signed:
            trust.check_signed(scope.relpath, scope.tag, head.store_id, head.counter, head.signer)
        else:
            trust.check_unsigned(scope.relpath)

    @staticmethod
    def _quick(scope: Scope, data: bytes) -> tuple[ScopeFile, scopefile.Rows] | None:
        quick = scopefile.parse_quick(data, scope.relpath)
        if quick is None or (quick[0].entity, quick[0].scope_id) != (scope.entity, scope.scope_id):
            return None  # the full parse says why
        return quick

    def _values_quick(self, scope: Scope, data: bytes, identity: Identity) -> dict[str, str] | None:
        """Every live value of a version-3 file read the quick way (``parse_quick``), verified
        exactly as ``unlock_file`` verifies, before any value is decoded; None: read it in full."""
        quick = self._quick(scope, data)
        if quick is None:
            return None
        file, rows = quick
        unlocked = self.unlock_file(scope, file, identity)  # signature, trust, stanza, MAC
        return scopefile.decrypt_rows(file, unlocked.keys, rows, scope.relpath)

    def read_values(
        self, scope: Scope, data: bytes, identity: Identity, snapshots: Snapshots | None = None, *,
        save: bool = True, file: ScopeFile | None = None, head_only: bool = False, body_only: bool = False,
    ) -> dict[str, str]:
        """Every live value of ``scope`` from its file's ``data``, through exec's snapshot when one opens.

        A miss reads the file in full (``file``: ``data`` already parsed) and,
        with ``save``, keeps a new snapshot. With ``head_only``, ``data`` is
        what ``read_head`` gave, and a miss reads the file again (``read_current``);
        ``body_only``: ``data`` is what ``read_current`` gave.
        """
        if snapshots is not None:
            values = self.from_snapshot(scope, data, identity, snapshots)
            if values is not None:
                return values
        if head_only and len(data) >= scopefile.HEAD_BYTES:  # a shorter read was the whole file
            whole = self.read_current(scope)
            if whole is None:
                raise NotFoundError(f"{scope.relpath} was removed while it was read; run the command again")
            data, file, body_only = whole, None, True
        quick = None if file is not None else self._values_quick(scope, data, identity)
        values = quick if quick is not None else self.unlock_file(
            scope, file or self.parse(scope, data, body_only=body_only), identity
        ).values()
        if snapshots is not None and save:
            head = scopefile.head_of(data)
            if head is not None:
                snapshots.save(scope, head.key, values)
        return values

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

    def default_recipients(self, identity: Identity) -> Recipients:
        """Who a new scope file is sealed to: the roster's store-wide members, and the writer."""
        roster = self.roster(identity.public)
        chosen = [] if roster is None else roster.recipients()
        if identity.public not in chosen:
            chosen.append(identity.public)
        return chosen

    def _store_id_for_new_file(self, identity: Identity) -> str:
        """The store id a new file gets; refuse to start a second id in a store of signed files."""
        trust = self.trust(identity.public)
        roster = trust.roster()
        if roster is not None and roster.signed:
            return trust.store_id_for_write(roster.store_id)
        if not (trust.state.store_id or trust.state.signed):
            # learn the id from a file of the store this reader accepts, if there is one
            for scope in self.scopes():
                try:
                    file = self.load(scope)
                    if file is not None and file.signed:
                        self.verify(scope, file, identity.public)
                        break
                except SecretStoreError:
                    continue
        if trust.state.store_id or trust.state.signed or trust.known_store_id():
            return trust.store_id_for_write()
        others = {key: label for key, label in self.signers().items() if key != identity.public_text}
        if others:
            shown = ", ".join(f"{key} ({label})" if label else key for key, label in sorted(others.items()))
            raise TrustError(
                f"this store holds files signed by {shown}, none of which you have accepted yet; "
                "refusing to add a file to it",
                hint="check the keys with their owners, then run: secretstore trust KEY",
            )
        return trust.store_id_for_write()  # a new store: its first file starts its id

    def new_scope(self, scope: Scope, identity: Identity) -> UnlockedScope:
        keys = envelope.new_keys()
        file = ScopeFile(scope.entity, scope.scope_id, envelope.stanzas(self.default_recipients(identity), keys))
        file.store_id = self._store_id_for_new_file(identity)
        return UnlockedScope(scope, file, keys)

    def _write(self, unlocked: UnlockedScope, identity: Identity) -> None:
        """Sign ``unlocked`` as ``identity`` with the next counter and replace its file atomically."""
        relpath = unlocked.scope.relpath
        trust = self.trust(identity.public)
        file = unlocked.file
        store_id = file.store_id or self._store_id_for_new_file(identity)
        counter = trust.next_counter(relpath, file.counter)
        parts = envelope.seal_parts(file, unlocked.keys, identity, store_id=store_id, counter=counter, warn=_warning)
        fsio.atomic_write(self.path(unlocked.scope), parts)  # history carried over: copied file to file
        trust.wrote(relpath, store_id, counter)
        listings = self._listings()
        head = None if listings is None else _written_head(parts)
        if listings is not None and head is not None:  # the rows of the file just written: list needs no read
            listings.save(unlocked.scope, head.key, [
                (name, entry.updated, entry.writer, entry.rotate)
                for name, entry in file.entries.items() if entry.current is not None
            ])

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
            if len(values) == 1:
                [(name, value)] = values.items()
                done = self._set_one_spliced(scope, name, value, identity)
                if done is not None:
                    if done == "unchanged" and unchanged is not None:
                        unchanged.append(name)
                    return [name] if done == "new" else []
            existing = self.unlock(scope, identity)
            unlocked = existing or self.new_scope(scope, identity)
            stamp = now()
            changed = existing is None
            keep = self.history_limit(identity)
            for name, value in values.items():
                if existing is not None and _holds(existing, name, value):
                    if unchanged is not None:
                        unchanged.append(name)
                    continue
                changed = True
                if unlocked.put(name, value, stamp, identity.public_text, keep):
                    created.append(name)
            if changed:
                self._write(unlocked, identity)
        return created

    def _set_one_spliced(self, scope: Scope, name: str, value: str, identity: Identity) -> str | None:
        """``set`` of one name in a version-3 file without parsing its other entries
        (``_splice``): "new", "replaced" or "unchanged"; None when the full path must run."""

        def change(one: UnlockedScope) -> str:
            if _holds(one, name, value):
                return "unchanged"
            new = one.put(name, value, now(), identity.public_text, self.history_limit(identity))
            return "new" if new else "replaced"

        return self._splice(scope, name, identity, change)

    def _splice(self, scope: Scope, name: str, identity: Identity, change: Callable[[UnlockedScope], str]) -> str | None:
        """Change one entry of a version-3 or -4 file without parsing the others: a version-4
        file gets a section appended (``_append``), a version-3 file is written again with
        every other entry copied as bytes (``scopefile.Splice``).

        ``change`` gets the file unlocked with that entry alone (none if the name has
        none) and edits it as every write does (``UnlockedScope.put``, ``remove``...);
        it returns what to report, "unchanged" to write nothing. None when the file is
        not one to splice (none yet, another version, unmerged, near the size cap,
        anything odd): the full read and write run instead. Verified exactly as ``unlock``
        verifies: the signature over the digest of every byte carried over, trust,
        counter, MAC.
        """
        data, tail = self._read_start(scope)
        try:
            found = None if data is None else scopefile.parse_v3_head(data, scope.relpath, tail)
            if data is None or found is None:
                return None
            file, entries_at, head_end = found
            if (file.entity, file.scope_id) != (scope.entity, scope.scope_id):
                return None
            site = scopefile.Splice.locate(file, data, entries_at, head_end, name, tail, scope.relpath)
            if site is None:
                return None
            if file.version == scopefile.FORMAT_V4:
                return self._append(scope, name, identity, change, site, head_end)
            unlocked = self.unlock_file(scope, file, identity)
            if site.entry is not None:
                file.entries[name] = site.entry
            outcome = change(unlocked)
            if outcome == "unchanged":
                return outcome
            new = file.entries.get(name)
            trust = self.trust(identity.public)
            store_id = file.store_id
            counter = trust.next_counter(scope.relpath, file.counter)
            file.counter, file.signer = counter, identity.public_text
            if site.leaves_none(new) or site.size(new) > limits.MAX_SCOPE_FILE_BYTES:
                return None  # the full write: "[secrets]" alone; or the oldest versions dropped to fit
            parts = site.parts(new, envelope.digest_signer(file, unlocked.keys, identity))
            fsio.atomic_write(self.path(scope), parts)  # the other entries' history: copied file to file
            trust.wrote(scope.relpath, store_id, counter)
            self._relist(scope, scopefile.head_of(data), _written_head(parts), name, new)
            return outcome
        finally:
            if tail is not None:
                tail.close()

    def _append(self, scope: Scope, name: str, identity: Identity, change: Callable[[UnlockedScope], str],
                 site: scopefile.Splice, head_end: int) -> str | None:
        """``_splice`` for a version-4 file: ``name``'s new entry (and its history, as a new
        chunk) appended as a section, sealed over the digest the file's last seal signs
        (FORMAT.md, "Scope file, version 4"). Nothing else of the file is read but its body
        and its sections, and nothing of it is written again. None for the full write: when
        the file has enough sections to be written again in one piece, the name leaves the
        file (``delete --purge``), or anything is odd (the full read says what)."""
        file, data, region = site.file, site.data, site.region
        base = site.body_end + site._before + site._old_length + site._after
        size = region.end
        if base > size:
            return None
        tail = region.tail
        after_history = tail.pread(base, size - base) if tail is not None else data[base:]
        sections = scopefile.parse_sections(after_history, base, file.digest, scope.relpath)
        if sections is None or sections.count >= scopefile.COMPACT_SECTIONS or sections.end > scopefile.COMPACT_BYTES:
            return None
        region.consistent = True  # the history is exactly its chunks: the sections start where they end
        old_head = scopefile.sealed_head(data[:head_end], memoryview(after_history)[: sections.end])
        sections.seal(file)
        entry = sections.updates.get(name, site.entry)
        if entry is not None:
            file.entries[name] = entry
        unlocked = self.unlock_file(scope, file, identity)  # signature, trust, counter, stanza, MAC
        outcome = change(unlocked)
        if outcome == "unchanged":
            return outcome
        new = file.entries.get(name)
        if new is None:
            return None  # purged: only writing the file again takes a value out of it
        trust = self.trust(identity.public)
        counter = trust.next_counter(scope.relpath, file.counter)
        section, _digest = scopefile.section_bytes(
            name, new, file.digest, after_history[sections.sealed_at : sections.end], base, counter, identity.public_text,
            envelope.digest_signer(file, unlocked.keys, identity))
        if base + sections.end + len(section) > limits.MAX_SCOPE_FILE_BYTES:
            return None  # the full write drops the oldest versions to fit
        cut = size - base - sections.end
        if not fsio.append_at(self.path(scope), section, base + sections.end, tail):
            return None
        if cut:
            _warning(f"{scope.relpath}: removed {cut} byte(s) after its last seal that no seal covered "
                     "(a write cut short, or added by hand: no reader used them)")
        trust.wrote(scope.relpath, file.store_id, counter)
        self._relist(scope, old_head, scopefile.sealed_head(data[:head_end], section), name, new)
        return outcome

    def _relist(self, scope: Scope, before: scopefile.Head | None, after: scopefile.Head | None, name: str,
                entry: Entry | None) -> None:
        """list's cache after a write of one entry: the rows verified for the file with the
        head ``before``, with ``name``'s row now ``entry``'s (not listed when it has no current
        value), kept for the head ``after``; nothing when those rows are not cached."""
        listings = self._listings()
        rows = None if listings is None or before is None else listings.load(scope, before.key)
        if listings is None or rows is None or after is None:
            return
        kept = [r for r in rows if r[0] != name]
        if entry is not None and entry.current is not None:
            kept.append((name, entry.updated, entry.writer, entry.rotate))
            kept.sort(key=lambda r: r[0])
        listings.save(scope, after.key, kept)

    def history_limit(self, identity: Identity) -> int:
        """How many previous values per name this store keeps: the roster's ``history``, else 10."""
        roster = self.roster(identity.public)
        return DEFAULT_HISTORY if roster is None or roster.history is None else roster.history

    def delete(self, scope: Scope, name: str, identity: Identity, *, purge: bool = False) -> None:
        """Delete ``name`` (its value joins its history); ``purge``: drop it and its history."""
        check_name(name)

        def remove(one: UnlockedScope) -> str:
            one.remove(name, now(), identity.public_text, self.history_limit(identity), purge=purge)
            return "deleted"

        self._change_one(scope, name, identity, remove, f"no {scope} secret {name!r} to delete")

    def _change_one(self, scope: Scope, name: str, identity: Identity, change: Callable[[UnlockedScope], str],
                    missing: str) -> None:
        """Apply ``change`` (as ``_splice`` takes it) to ``name`` under the lock: spliced when the
        file allows, else on the whole file read and written again; NotFoundError(``missing``)
        when the scope has no file."""
        with fsio.locked(self.root):
            self._clean_stale_temps(scope)
            if self._splice(scope, name, identity, change) is not None:
                return
            unlocked = self.unlock(scope, identity)
            if unlocked is None:
                raise NotFoundError(missing)
            if change(unlocked) != "unchanged":
                self._write(unlocked, identity)

    # --- history ---------------------------------------------------------------

    def versions(self, scope: Scope, name: str, me: PublicKey | None = None) -> Versions:
        """``name``'s versions, newest first (0 is the current one), without values; no private key.

        The file is verified (signature and trust) as ``list`` does.
        """
        check_name(name)
        file = self.load(scope)
        entry = None if file is None else file.entries.get(name)
        if file is None or entry is None:
            raise NotFoundError(f"no {scope} secret {name!r}")
        self.verify(scope, file, caller_public_key() if me is None else me)
        found = [VersionInfo(0, entry.updated, entry.writer, "deleted" if entry.current is None else "current")]
        for number, version in enumerate(reversed(entry.history), 1):
            found.append(VersionInfo(number, version.updated, version.writer, "previous"))
        return found

    def get_version(self, scope: Scope, name: str, number: int, identity: Identity) -> str:
        check_name(name)
        unlocked = self.unlock(scope, identity)
        if unlocked is None:
            raise NotFoundError(f"no {scope} secret {name!r}")
        return unlocked.version_value(name, number)

    def rollback(self, scope: Scope, name: str, number: int, identity: Identity, *,
                 expected: str | None = None) -> None:
        """Make version ``number`` of ``name`` its value again, as a new version.

        The value is encrypted under the file's data key of today, so it is
        sealed to today's recipients only: a removed recipient never regains a
        value through history.

        ``expected``: the ``version_tag`` of the version the caller means (the one a user
        confirmed); checked under the store lock, in the same write, so nothing changes the
        name between the check and the write. Another version there: VersionChangedError,
        nothing written. None (the CLI): whatever version ``number`` is now.
        """
        check_name(name)
        if number < 1:
            raise UsageError("--to takes a previous version: 1 is the one before the current value")
        self._change_one(scope, name, identity, self._bring_back(name, number, identity, expected),
                         f"no {scope} secret {name!r}")

    def _bring_back(self, name: str, number: int, identity: Identity,
                    expected: str | None = None) -> Callable[[UnlockedScope], str]:
        """A change for ``_change_one``: version ``number`` of ``name`` made its value again
        (when ``expected`` is given, only if that version is still the one it tags)."""

        def change(one: UnlockedScope) -> str:
            if expected is not None:
                _check_expected(one, name, number, expected)
            value = one.version_value(name, number)
            one.put(name, value, now(), identity.public_text, self.history_limit(identity), restored=True)
            return "restored"

        return change

    def undelete(self, scope: Scope, name: str, identity: Identity, *, expected: str | None = None) -> None:
        """Bring back a deleted name with the value it had when it was deleted (its version 1).

        ``expected``: as for ``rollback``, the ``version_tag`` of the version 1 the caller means,
        checked under the store lock (after "not deleted", "no such secret").
        """
        check_name(name)
        back = self._bring_back(name, 1, identity, expected)

        def change(one: UnlockedScope) -> str:
            _check_deleted(scope, name, one.file.entries.get(name))  # on the verified file
            return back(one)

        self._change_one(scope, name, identity, change, _UNDELETE_MISSING.format(scope=scope, name=name))

    # --- the roster ----------------------------------------------------------------

    def _roster_for_write(self, identity: Identity) -> Roster:
        """The roster to change (accepted), or a new, empty one; a 0.1 roster is refused (``upgrade`` signs it)."""
        roster = self.roster(identity.public)
        return Roster() if roster is None else roster

    def _write_roster(self, roster: Roster, identity: Identity) -> None:
        """Endorse every member whose endorsement is missing or stale, sign, write, record the counter."""
        trust = self.trust(identity.public)
        store_id = roster.store_id or self._store_id_for_new_file(identity)
        roster.members = [
            member
            if member.endorsement and recipients.endorsement_valid(member, store_id)
            else recipients.endorse(member, identity, store_id)
            for member in roster.members
        ]
        counter = trust.next_counter(recipients.FILENAME, roster.counter)
        data = recipients.sign(roster, identity, store_id=store_id, counter=counter)
        recipients.save(self.recipients_path, data)
        trust.wrote(recipients.FILENAME, store_id, counter)
        trust.forget_roster()

    @staticmethod
    def _grant(roster: Roster, recipient: PublicKey, scope: Scope | None) -> bool:
        """Add ``recipient`` to the roster, store-wide or for ``scope``; False when nothing changed."""
        member = roster.find(recipient)
        roster.revoked = tuple(k for k in roster.revoked if PublicKey.decode(k) != recipient)
        text = recipient.text if recipient.can_sign or member is None else member.public_key
        label = recipient.label or (member.label if member is not None else "")
        if member is None:
            scopes: tuple[str, ...] = () if scope is None else (scope.tag,)
        elif member.store_wide or scope is None:
            scopes = ()
        else:
            scopes = tuple(sorted({*member.scopes, scope.tag}))
        wanted = Member(text, label, scopes)
        if member is not None and (member.public_key, member.label, member.scopes) == (text, label, scopes):
            return False
        roster.members = [m for m in roster.members if m.key != recipient] + [wanted]
        return True

    @staticmethod
    def _revoke(roster: Roster, recipient: PublicKey, scope: Scope | None) -> bool:
        """Take ``recipient`` out of the roster (store-wide) or out of ``scope``; False when absent."""
        member = roster.find(recipient)
        if member is None:
            return False
        if scope is not None and member.store_wide:
            return False  # still a store-wide member: removing it from one file does not change that
        remaining = () if scope is None else tuple(t for t in member.scopes if t != scope.tag)
        roster.members = [m for m in roster.members if m.key != recipient]
        if remaining:
            roster.members.append(Member(member.public_key, member.label, remaining))
        else:
            roster.revoked = (*roster.revoked, member.public_key)
        return True

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
        self, recipient: PublicKey, identity: Identity, scope: Scope | None = None
    ) -> SharingReport:
        """Let ``recipient`` read (and write) one scope (created empty if absent), or the whole store.

        Store-wide, every scope file the caller can open gets a sealed copy of
        its data key. Either way the roster (``recipients.toml``) lists the key,
        endorsed by the caller, so other readers who trust the caller trust the
        new member's writes, and store-wide members are sealed into new scopes.
        """
        report = SharingReport()
        with fsio.locked(self.root):
            # Read the roster before writing anything: a refused one must leave every file as it was.
            roster = self._roster_for_write(identity)
            if scope is None and not any(member.store_wide for member in roster.members):
                # the first store-wide add lists the writer too, as new scopes were sealed to it
                roster.members.append(Member(identity.public_text))
            if scope is not None and self.load(scope) is None:
                self._clean_stale_temps(scope)
                created = self.new_scope(scope, identity)
                created.add_recipient(recipient)
                self._write(created, identity)
                report.changed.append(scope)
            else:
                for unlocked in self._each_scope(scope, identity, report):
                    if unlocked.add_recipient(recipient):
                        self._write(unlocked, identity)
                        report.changed.append(unlocked.scope)
                    else:
                        report.unchanged.append(unlocked.scope)
            if scope is not None and report.skipped:
                raise NotRecipientError(report.skipped[0][1])
            if self._grant(roster, recipient, scope) or not roster.signed:
                self._write_roster(roster, identity)
                report.roster = True
        return report

    def remove_recipient(
        self, recipient: PublicKey, identity: Identity, scope: Scope | None = None
    ) -> SharingReport:
        """Stop ``recipient`` reading one scope, or the whole store (and trusting its writes).

        Each file it could open gets a new data key and every value is
        re-encrypted, since a removed reader may have kept the old key.
        Store-wide, the roster lists the key as revoked and the caller stops
        trusting it, so a file it forges afterwards is refused.
        """
        if recipient == identity.public:
            raise UsageError(
                "refusing to remove your own key: you would lose access to what you remove it from",
                hint="ask another recipient to remove you",
            )
        report = SharingReport()
        with fsio.locked(self.root):
            if scope is not None and self.load(scope) is None:
                raise NotFoundError(f"{scope} has no secrets file, so no recipients")
            roster = self._roster_for_write(identity)  # before any write, as above
            for unlocked in self._each_scope(scope, identity, report):
                if not unlocked.has_recipient(recipient):
                    report.unchanged.append(unlocked.scope)
                    continue
                exposed = sorted(unlocked.file.entries)
                unlocked.rekey([r for r in unlocked.recipients() if r != recipient])
                for name in exposed:  # it could read them: "rotate needed" until each is set again
                    entry = unlocked.file.entries[name]  # a deleted name too: undelete brings its value back
                    unlocked.file.entries[name] = Entry(
                        entry.current, entry.updated, entry.history, entry.writer, True
                    )
                self._write(unlocked, identity)
                report.changed.append(unlocked.scope)
                report.exposed.append((unlocked.scope, exposed))
            if scope is not None and not report.changed:
                if report.skipped:
                    raise NotRecipientError(report.skipped[0][1])
                raise NotFoundError(f"{recipient.text} is not a recipient of {scope}")
            member = roster.find(recipient)
            if self._revoke(roster, recipient, scope) or not roster.signed:
                self._write_roster(roster, identity)
                report.roster = True
            if scope is None:
                label = recipient.label or (member.label if member is not None else "")
                self.trust(identity.public).untrust_key(recipient.with_label(label))
        return report

    def upgrade_plan(self, identity: Identity) -> UpgradePlan:
        """What ``upgrade`` would sign as ``identity``: every 0.1 file it can open (MAC checked),
        with its names (never a value), the 0.1 roster's members, and what it skips. Writes nothing."""
        return self._survey(identity)[0]

    def _survey(self, identity: Identity) -> tuple[UpgradePlan, dict[str, tuple[ScopeFile, crypto.FileKeys]]]:
        import hashlib

        plan = UpgradePlan()
        opened: dict[str, tuple[ScopeFile, crypto.FileKeys]] = {}
        for scope in self.scopes():
            first = self.read_head(scope)
            head = None if first is None else scopefile.head_of(first)
            if head is not None and head.signed:
                plan.unchanged.append(scope)
                continue
            data = self.read_bytes(scope)
            if data is None:
                continue
            file = self.parse(scope, data)
            if file.signed:
                plan.unchanged.append(scope)
                continue
            keys = envelope.unwrap(file, identity, scope.relpath)
            if keys is None:
                plan.skipped.append((scope, not_a_recipient(scope, identity).message))
                continue
            envelope.verify_mac(file, keys, scope.relpath)
            names = sorted(file.live_names())
            readers = [f"{s.public_key} ({s.label})" if s.label else s.public_key for s in file.recipients]
            plan.files.append(UpgradeFile(scope, names, len(file.entries) - len(names), readers,
                                          hashlib.sha256(data).digest()))
            opened[scope.relpath] = (file, keys)
        data = self.read_roster_bytes()
        old_roster = None if data is None else recipients.parse(data, recipients.FILENAME)
        if data is not None and old_roster is not None and not old_roster.signed:
            plan.roster = list(old_roster.members)
            plan.roster_digest = hashlib.sha256(data).digest()
        return plan, opened

    def upgrade(self, identity: Identity, shown: UpgradePlan) -> SharingReport:
        """Sign, as ``identity``, the 0.1 (unsigned) files and 0.1 roster ``shown`` lists
        (``upgrade_plan``, shown to the user and confirmed), exactly as they were shown.

        The one step that accepts a store's unsigned files, which every other command
        refuses: by confirming it the user vouches for what they hold, and for every key
        the 0.1 roster lists (anyone who can write the store could have made them; run it
        only on a store you wrote yourself with 0.1). Under the store lock the store is
        surveyed again: if any file to sign, or the roster, is not the one shown, nothing
        is written (SecretStoreError). Signed files are left as they are; files the identity
        cannot open are skipped (one of their recipients must upgrade them).
        """
        report = SharingReport()
        trust = self.trust(identity.public)
        with fsio.locked(self.root):
            plan, opened = self._survey(identity)
            if plan.fingerprint() != shown.fingerprint():
                raise SecretStoreError(
                    "the store changed since upgrade showed what it would sign: nothing was signed",
                    hint="run 'secretstore upgrade' again and check what it shows",
                )
            report.unchanged, report.skipped = plan.unchanged, plan.skipped
            data = self.read_roster_bytes()
            old_roster = None if data is None else recipients.parse(data, recipients.FILENAME)
            if old_roster is not None and old_roster.signed:
                store_id = self.roster(identity.public).store_id  # type: ignore[union-attr]
            else:
                store_id = trust.store_id_for_write()
            for item in plan.files:
                scope = item.scope
                self._clean_stale_temps(scope)
                file, keys = opened[scope.relpath]
                unlocked = UnlockedScope(scope, file, keys)
                unlocked.add_recipient(identity.public)  # your own stanza names your ssk2 key
                file.store_id = store_id
                self._write(unlocked, identity)
                report.changed.append(scope)
            if plan.roster is not None:
                me = identity.public
                roster = Roster(
                    [Member(me.text if m.key == me else m.public_key, m.label) for m in plan.roster],
                    store_id=store_id,
                )
                self._write_roster(roster, identity)
                report.roster = True
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
                    self._write(unlocked, identity)
                    report.changed.append(scope)
                if progress is not None:
                    progress(scope)
        return report


def _stanza_label(file: ScopeFile, key: str) -> str:
    for stanza in file.recipients:
        if stanza.public_key == key:
            return stanza.label
    return ""
