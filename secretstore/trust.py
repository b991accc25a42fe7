"""Whom a reader trusts to write a store, and the newest version of each file it has read.

Anyone who can push to a shared store can write its files. Signatures say
who wrote a file; this module decides whether that writer counts, for each
reader on its own (FORMAT.md, "Trust"):

- **Explicit writers**, kept outside the store in the reader's state file
  (``<state dir>/trust/<hash of the store path>``, 0600): the reader
  itself and keys it named with ``secretstore trust KEY``.
  ``secretstore untrust`` and ``recipients remove`` take a key out and keep
  it out, the roster notwithstanding.
- **Members vouched for** in the store's signed roster (``recipients.toml``):
  a member whose endorsement was signed by a key already trusted store-wide
  (explicitly, or as a store-wide member itself), so keys the reader added
  with ``recipients add`` (endorsed by the reader) are trusted. A member
  added to some scopes only may write only those scopes. A key the roster
  lists as revoked is trusted only if the reader trusts it explicitly.
- A node or CI job without local state (only ``SECRETSTORE_KEY``) takes its
  explicit writers from ``SECRETSTORE_TRUST``; with neither that nor a state
  file, writers are unverified, with a warning once per run (an error under
  ``--strict``).

The state also records the store's id (a file of another store is refused)
and the highest counter accepted per file, so an older file (a rollback, or
a replayed copy from before a removal) is refused until the reader accepts
it with ``secretstore accept-revert``. Unsigned 0.1 files are refused by
every reader, always: anyone who can write the store could have made one
(only ``secretstore upgrade``, after showing them and asking, reads them to
sign them).
"""

from __future__ import annotations

import os

from secretstore import fsio
from secretstore.errors import (
    RollbackError,
    SecretStoreError,
    StoreFormatError,
    TrustError,
    UnsignedFileError,
    UntrustedWriterError,
    UsageError,
)
from secretstore.keys import PUBLIC_PREFIX, PublicKey

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from collections.abc import Callable, Mapping
    from typing import NoReturn

    from secretstore.recipients import Roster

ENV_TRUST = "SECRETSTORE_TRUST"
ENV_KEY = "SECRETSTORE_KEY"
STATE_FORMAT = "secretstore-trust/v1"
ROSTER = "recipients.toml"

LOCAL = "local"  # a state file: the reader's own decisions
ENVIRONMENT = "environment"  # SECRETSTORE_TRUST names the writers
UNVERIFIED = "unverified"  # SECRETSTORE_KEY alone: no way to tell writers apart

# How a key became an explicit writer (shown by ``trust --list``).
HOW_SELF = "you"
HOW_TRUST = "secretstore trust"


def state_path(store_root: str) -> str:
    """The reader's state file for the store at ``store_root`` (by its real path)."""
    from secretstore import crypto, paths

    digest = crypto.checksum(os.fsencode(os.path.realpath(store_root)), 16).hex()
    return os.path.join(paths.state_dir(), "trust", digest)


def load_state(store_root: str) -> State:
    return State.load(state_path(store_root), os.path.realpath(store_root))


def parse_env_keys(text: str) -> list[PublicKey]:
    """``SECRETSTORE_TRUST``: public keys separated by commas or white space."""
    keys = []
    for item in text.replace(",", " ").split():
        try:
            keys.append(PublicKey.decode(item))
        except ValueError as exc:
            raise UsageError(f"{ENV_TRUST}: {exc}") from None
        if not keys[-1].can_sign:
            raise UsageError(
                f"{ENV_TRUST}: {item[:12]}... is a 0.1 key (ssk1), which cannot sign",
                hint="ask its owner for their current key: 'secretstore identity' prints it",
            )
    return keys


class State:
    """The JSON state file of one reader for one store. Changed only through ``update``."""

    __slots__ = (
        "counters", "exists", "notified", "path", "revoked", "roster", "signed", "stamp", "store", "store_id",
        "writers",
    )

    def __init__(self, path: str, store: str) -> None:
        self.path = path
        self.store = store
        self.exists = False
        self.store_id = ""
        self.signed = False  # a signed file of this store was accepted (unsigned ones are always refused)
        self.writers: dict[str, dict[str, str]] = {}  # key text -> {"label", "how", "since"}
        self.revoked: dict[str, dict[str, str]] = {}
        self.counters: dict[str, int] = {}
        self.notified: list[str] = []
        # What the last accepted roster gave, keyed by its digest and the explicit writers:
        # {"digest", "explicit", "store_wide": [...], "scoped": {key: [tags]}, "revoked": [...],
        #  "labels": {key: label}, "added_by": {key: adder}}
        self.roster: dict[str, object] = {}
        self.stamp: tuple[int, int, int] | None = None  # the file's (inode, size, mtime) when read

    @classmethod
    def load(cls, path: str, store: str) -> State:
        """The state at ``path`` (empty when there is none); a damaged file is an error.

        A line format, not JSON or TOML: ``exec`` reads this file on every run and
        neither parser is on its start-up path. One record per line, fields
        separated by tabs (labels are printable text, which holds no tab).
        """
        state = cls(path, store)
        state.stamp = _stamp(path)
        data = fsio.read_private_file(path)
        if data is None:
            return state
        try:
            lines = data.decode("utf-8").splitlines()
            if not lines or lines[0] != f"format\t{STATE_FORMAT}":
                raise ValueError
            for line in lines[1:]:
                if not line or line.startswith("#"):
                    continue
                state._read_record(line.split("\t"))
        except (ValueError, UnicodeDecodeError, IndexError, KeyError):
            raise StoreFormatError(
                f"trust state {path} is damaged",
                hint="restore it, or remove it and trust the store's writers again (secretstore trust KEY)",
            ) from None
        state.exists = True
        return state

    def _read_record(self, fields: list[str]) -> None:
        kind, rest = fields[0], fields[1:]
        roster = self.roster
        if kind == "store":
            pass  # informational: the store's path when the file was written
        elif kind == "store_id":
            self.store_id = rest[0]
        elif kind == "signed":
            self.signed = rest[0] == "1"
        elif kind == "writer":
            self.writers[rest[0]] = {"label": rest[1], "how": rest[2], "since": rest[3]}
        elif kind == "revoked":
            self.revoked[rest[0]] = {"label": rest[1], "since": rest[2]}
        elif kind == "counter":
            value = int(rest[1])
            if value < 1:
                raise ValueError
            self.counters[rest[0]] = value
        elif kind == "notified":
            self.notified.append(rest[0])
        elif kind == "roster":
            roster.update({"digest": rest[0], "explicit": rest[1], "store_id": rest[2], "store_wide": [],
                           "scoped": {}, "revoked": [], "labels": {}, "added_by": {}})
        elif kind in ("roster-store-wide", "roster-revoked"):
            _roster_list(roster, kind[len("roster-"):].replace("-", "_")).append(rest[0])
        elif kind == "roster-scoped":
            scoped = roster["scoped"]
            assert isinstance(scoped, dict)
            scoped.setdefault(rest[0], []).append(rest[1])
        elif kind in ("roster-label", "roster-added-by"):
            table = roster["labels" if kind == "roster-label" else "added_by"]
            assert isinstance(table, dict)
            table[rest[0]] = rest[1]
        else:
            raise ValueError(kind)

    def to_bytes(self) -> bytes:
        # informational: a path that is not UTF-8 (a byte like \xff) is written as \xff text
        store = os.fsencode(self.store).decode("utf-8", "backslashreplace")
        store = store.replace("\t", " ").replace("\n", " ").replace("\r", " ")
        lines = [
            f"format\t{STATE_FORMAT}",
            "# whom you trust to write one secretstore store, and the newest version of each file read",
            f"store\t{store}",
        ]
        if self.store_id:
            lines.append(f"store_id\t{self.store_id}")
        lines.append(f"signed\t{1 if self.signed else 0}")
        for key, info in self.writers.items():
            lines.append(f"writer\t{key}\t{info.get('label', '')}\t{info.get('how', '')}\t{info.get('since', '')}")
        for key, info in self.revoked.items():
            lines.append(f"revoked\t{key}\t{info.get('label', '')}\t{info.get('since', '')}")
        for relpath, counter in sorted(self.counters.items()):
            lines.append(f"counter\t{relpath}\t{counter}")
        lines += [f"notified\t{item}" for item in sorted(set(self.notified))]
        cache = self.roster
        if cache.get("digest"):
            lines.append(f"roster\t{cache['digest']}\t{cache['explicit']}\t{cache.get('store_id', '')}")
            lines += [f"roster-store-wide\t{key}" for key in _roster_list(cache, "store_wide")]
            scoped = cache.get("scoped", {})
            assert isinstance(scoped, dict)
            lines += [f"roster-scoped\t{key}\t{tag}" for key, tags in scoped.items() for tag in tags]
            lines += [f"roster-revoked\t{key}" for key in _roster_list(cache, "revoked")]
            for kind in ("labels", "added_by"):
                table = cache.get(kind, {})
                assert isinstance(table, dict)
                name = "roster-label" if kind == "labels" else "roster-added-by"
                lines += [f"{name}\t{key}\t{value}" for key, value in table.items()]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def refresh(self) -> None:
        """Read the file again if another process changed it since (a long-lived Store)."""
        if _stamp(self.path) != self.stamp:
            self._adopt(State.load(self.path, self.store))

    def _adopt(self, fresh: State) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(fresh, name))

    def update(self, change: Callable[[State], None]) -> None:
        """Apply ``change`` to the file as it is on disk now (under a lock), write it, and adopt it."""
        directory = os.path.dirname(self.path)
        with fsio.locked(directory):
            fresh = State.load(self.path, self.store)
            change(fresh)
            fsio.atomic_write(self.path, fresh.to_bytes())
            fresh.exists, fresh.stamp = True, _stamp(self.path)
        self._adopt(fresh)


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _roster_list(cache: dict[str, object], name: str) -> list[str]:
    found = cache.setdefault(name, [])
    assert isinstance(found, list)
    return found


def now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def short(key_text: str) -> str:
    """A key as messages show it next to a label: the first 16 characters."""
    return key_text[:16] + "..." if len(key_text) > 19 else key_text


class Trust:
    """One reader's trust decisions for one store, during one command."""

    def __init__(
        self,
        store_root: str,
        me: PublicKey | None,
        read_roster: Callable[[], bytes | None],
        *,
        environ: Mapping[str, str] | None = None,
        strict: bool = False,
        emit: Callable[[str], None] | None = None,
        scan_signers: Callable[[], dict[str, str]] | None = None,
        state: State | None = None,
        baseline: dict[str, int] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.store_root = store_root
        self.me = me if me is not None and me.can_sign else None
        self._read_roster = read_roster
        self._scan_signers = scan_signers
        self.strict = strict
        self._emit = emit
        # Load the state before any file of the store is read (``Store.state``): a version
        # written meanwhile by another process is then newer than what the state says.
        self.state = state if state is not None else load_state(store_root)
        self._baseline = {} if baseline is None else baseline
        self._env_keys: list[PublicKey] | None = None
        if env.get(ENV_TRUST, "").strip():
            self.mode = ENVIRONMENT
            self._env_keys = parse_env_keys(env[ENV_TRUST])
        elif self.state.exists or not env.get(ENV_KEY):
            self.mode = LOCAL
        else:
            self.mode = UNVERIFIED
        # Both caches are keyed by what they were computed from (the roster's bytes, the
        # explicit writers), so a Store kept across commands (the web page) never goes stale.
        self._roster: tuple[bytes | None, Roster | None] | None = None
        self._derived: tuple[tuple[str, str], tuple[set[str], dict[str, set[str]], set[str]]] | None = None
        self._said: set[str] = set()
        self._run_store_id = ""
        self._run_signed = False

    def __repr__(self) -> str:
        return f"Trust({self.store_root!r}, mode={self.mode})"

    # --- what the reader trusts -------------------------------------------------------

    @property
    def persistent(self) -> bool:
        """Whether decisions and counters are kept in the state file."""
        return self.mode == LOCAL or (self.mode == ENVIRONMENT and self.state.exists)

    def explicit(self) -> dict[str, str]:
        """Explicit writers: key text -> label (you, ``secretstore trust``, ``recipients add``)."""
        found: dict[str, str] = {}
        if self.me is not None:
            found[self.me.text] = "you"
        if self._env_keys is not None:
            for env_key in self._env_keys:
                found.setdefault(env_key.text, f"from {ENV_TRUST}")
        else:
            for text, info in self.state.writers.items():
                found.setdefault(text, info.get("label", ""))
        for text in self.state.revoked:
            if self.me is None or text != self.me.text:
                found.pop(text, None)
        return found

    def forget_roster(self) -> None:
        """Read the roster again on next use (after this process rewrote it)."""
        self._roster = self._derived = None

    def _explicit_digest(self) -> str:
        from secretstore import crypto

        text = "\n".join(sorted(self.explicit())) + "\n-\n" + "\n".join(sorted(self.state.revoked))
        return crypto.checksum(text.encode(), 16).hex()

    def _derive(self) -> tuple[set[str], dict[str, set[str]], set[str]]:
        """(keys trusted store-wide, key -> scopes it alone may write, keys revoked).

        The roster's chains are followed once per roster version: the result is kept
        in the state under the digest of the roster's bytes and of the explicit
        writers, so an unchanged roster costs one read and one hash.
        """
        from secretstore import crypto

        explicit = set(self.explicit())
        data = self._read_roster()
        digest = "" if data is None else crypto.checksum(data, 32).hex()
        key = (digest, self._explicit_digest())
        if self._derived is not None and self._derived[0] == key:
            return self._derived[1]
        derived: tuple[set[str], dict[str, set[str]], set[str]]
        if data is None:
            derived = (explicit, {}, set())
        else:
            cache = self.state.roster
            cached = None
            if self.mode != UNVERIFIED and cache.get("digest") == digest and cache.get("explicit") == key[1]:
                cached = _from_cache(cache)
            if cached is not None:
                derived = cached
            else:
                roster = self.roster(data)
                if roster is None or not roster.signed:
                    derived = (explicit, {}, set())
                else:
                    store_wide, scoped = self._chains(roster, explicit)
                    derived = (store_wide, scoped, set(roster.revoked))
                    self._cache_roster(digest, roster, derived)
        self._derived = (key, derived)
        return derived

    def _roster_store_id(self) -> str:
        """The store id of the roster the derived trust came from ("" without a roster)."""
        if self._roster is not None and self._roster[1] is not None:
            return self._roster[1].store_id
        cached = self.state.roster.get("store_id")
        return cached if isinstance(cached, str) else ""

    def _cache_roster(self, digest: str, roster: Roster, derived: tuple[set[str], dict[str, set[str]], set[str]]) -> None:
        store_wide, scoped, revoked = derived
        cache: dict[str, object] = {
            "digest": digest,
            "store_id": roster.store_id,
            "explicit": self._explicit_digest(),
            "store_wide": sorted(store_wide),
            "scoped": {key: sorted(tags) for key, tags in sorted(scoped.items())},
            "revoked": sorted(revoked),
            "labels": {m.public_key: m.label for m in roster.members if m.label},
            "added_by": {m.public_key: m.added_by for m in roster.members},
        }
        self.state.roster = cache
        if self.persistent:

            def keep(fresh: State) -> None:
                fresh.roster = cache

            self.state.update(keep)

    def _chains(self, roster: Roster, roots: set[str]) -> tuple[set[str], dict[str, set[str]]]:
        """Follow endorsements from ``roots``: a member counts once its adder is trusted store-wide."""
        from secretstore.recipients import endorsement_valid

        revoked = (set(roster.revoked) | set(self.state.revoked)) - roots
        store_wide = set(roots)
        scoped: dict[str, set[str]] = {}
        pending = [m for m in roster.members if m.public_key.startswith(PUBLIC_PREFIX) and m.public_key not in revoked]
        valid = {id(m): endorsement_valid(m, roster.store_id) for m in pending}
        changed = True
        while changed:
            changed = False
            for member in list(pending):
                if member.added_by in store_wide and valid[id(member)]:
                    pending.remove(member)
                    changed = True
                    if member.store_wide:
                        store_wide.add(member.public_key)
                    else:
                        scoped.setdefault(member.public_key, set()).update(member.scopes)
        return store_wide, scoped

    def roster(self, data: bytes | None = None) -> Roster | None:
        """The store's roster when it is acceptable; None when the store has none.

        A signed roster must be signed by a key trusted store-wide (through its own
        endorsement chains from the explicit writers), be of this store and not older
        than the one accepted before. An unsigned (0.1) roster is refused, as every
        unsigned file is (``check_unsigned``).
        """
        if data is None:
            data = self._read_roster()
        if self._roster is not None and self._roster[0] == data:
            return self._roster[1]
        roster = None if data is None else self.accept_roster(data, ROSTER)
        self._roster = (data, roster)
        return roster

    def accept_roster(self, data: bytes, where: str, *, check_counter: bool = True) -> Roster:
        """Parse a roster and refuse it unless this reader accepts it (see ``roster``)."""
        from secretstore import recipients

        roster = recipients.parse(data, where)
        if not roster.signed:
            self.check_unsigned(where)
        else:
            recipients.check_signature(roster, where)
            self._check_store_id(where, roster.store_id)
            if self.mode == UNVERIFIED:
                self._warn_unverified()
            else:
                explicit = set(self.explicit())
                store_wide, _scoped = self._chains(roster, explicit)
                if roster.signer not in explicit and roster.signer in set(roster.revoked) | set(self.state.revoked):
                    raise self._untrusted(where, roster.signer, "", revoked=True,
                                          by_you=roster.signer not in roster.revoked)
                if roster.signer not in store_wide:
                    raise self._untrusted(where, roster.signer, self._label_in(roster, roster.signer))
            if check_counter:
                self._check_counter(ROSTER, "recipients", roster.counter)
            self._accept_signed(roster.store_id)
        return roster

    @staticmethod
    def _label_in(roster: Roster, key: str) -> str:
        for member in roster.members:
            if member.public_key == key:
                return member.label
        return ""

    def label_of(self, key: str, fallback: str = "") -> str:
        if self.me is not None and key == self.me.text:
            return "you"
        info = self.state.writers.get(key) or self.state.revoked.get(key)
        if info and info.get("label"):
            return info["label"]
        labels = self.state.roster.get("labels")
        if isinstance(labels, dict) and isinstance(labels.get(key), str) and labels[key]:
            return str(labels[key])
        return fallback

    def may_write(self, signer: str, tag: str) -> bool:
        """Whether ``signer`` is trusted to write the scope ``tag`` (``recipients`` for the roster).

        Explicit writers need no roster (the common case costs nothing more).
        """
        if signer in self.explicit():
            return True
        store_wide, scoped, _revoked = self._derive()
        return signer in store_wide or tag in scoped.get(signer, ())

    # --- checking a file -------------------------------------------------------------------

    def check_signed(self, relpath: str, tag: str, store_id: str, counter: int, signer: str,
                     label_hint: str = "", *, check_counter: bool = True) -> None:
        """Refuse a signed file (its signature already checked) of another store, by an
        untrusted writer, or older than the version already read; record its counter.

        Who signed is checked before which store the file claims: a forged file is
        named for what it is (a writer you do not trust), not for the id it carries."""
        if self.mode == UNVERIFIED:
            self._warn_unverified()
        elif signer not in self.explicit():
            try:
                _store_wide, scoped, revoked = self._derive()
                # a roster vouches only for files of its own store
                allowed = self.may_write(signer, tag) and store_id == self._roster_store_id()
            except SecretStoreError:  # a roster this reader does not accept vouches for nobody
                scoped, revoked, allowed = {}, set(), False
            if not allowed:
                if signer in revoked or signer in self.state.revoked:
                    raise self._untrusted(relpath, signer, label_hint, revoked=True, by_you=signer not in revoked)
                self._first_contact()
                raise self._untrusted(relpath, signer, label_hint, scopes=sorted(scoped.get(signer, ())))
            self._notice_vouched(signer, tag)
        self._check_store_id(relpath, store_id)
        if check_counter:
            self._check_counter(relpath, tag, counter)
        self._accept_signed(store_id)

    def check_unsigned(self, relpath: str) -> NoReturn:
        """A 0.1 (unsigned) file: always refused, whatever the state, ``$SECRETSTORE_TRUST`` or the store.

        Nothing tells its writer: 0.1 files are sealed to public keys and unsigned, so anyone
        who can write the store can make one, and delete every signed file beside it (a
        fresh clone or a CI job has no state that would tell). Only ``secretstore upgrade``
        reads one, showing what it would sign and asking first (FORMAT.md, "Version 1").
        """
        raise UnsignedFileError(
            f"{relpath} is not signed (a secretstore 0.1 file): refusing to use it "
            "(anyone who can write the store could have made it)",
            hint="only if you wrote this store yourself with secretstore 0.1, run 'secretstore upgrade': "
            "it shows what it would sign as you and asks first",
        )

    def _check_store_id(self, relpath: str, store_id: str) -> None:
        known = self.state.store_id or self._run_store_id
        if known and store_id != known:
            raise TrustError(
                f"{relpath} belongs to another store (store id {store_id}, this store is {known}): "
                "refusing to use it (copied in from another store?)",
                hint="restore the file from this store's history (git log -- FILE)",
            )

    def _check_counter(self, relpath: str, tag: str, counter: int) -> None:
        seen = self._baseline.get(relpath, self.state.counters.get(relpath, 0))
        if counter < seen:
            what = "recipients" if relpath == ROSTER else tag.replace(":", " --id ", 1)
            raise RollbackError(
                f"{relpath} is version {counter}, older than version {seen} you already read: "
                "it was rolled back (an old copy put back, or a revert); refusing to use it",
                hint=f"if it was reverted on purpose, accept it with: secretstore accept-revert {what}",
            )
        if counter > seen:
            self.state.counters[relpath] = counter
            if self.persistent:
                self.state.update(lambda fresh: _raise_counter(fresh, relpath, counter))

    def _accept_signed(self, store_id: str) -> None:
        self._run_store_id = self._run_store_id or store_id
        self._run_signed = True
        if self.persistent and (not self.state.signed or not self.state.store_id):

            def mark(fresh: State) -> None:
                fresh.signed = True
                fresh.store_id = fresh.store_id or store_id

            self.state.update(mark)

    def _untrusted(self, relpath: str, signer: str, label_hint: str, *, scopes: list[str] | None = None,
                   revoked: bool = False, by_you: bool = False) -> UntrustedWriterError:
        label = self.label_of(signer, label_hint)
        who = f"{signer} ({label})" if label else signer
        if revoked and by_you:  # 'secretstore untrust' on this machine, not a removal from the roster
            return UntrustedWriterError(
                f"{relpath} is signed by {who}, whom you stopped trusting (secretstore untrust): refusing to use it",
                hint=f"if that was a mistake, run: secretstore trust {signer}; else restore the file from the "
                "store's history",
            )
        if revoked:
            return UntrustedWriterError(
                f"{relpath} is signed by {who}, who was removed from this store: refusing to use it",
                hint="restore the file from the store's history, or ask an owner to add the key back",
            )
        allowed = scopes or []
        if allowed:
            from secretstore.recipients import describe_tag

            return UntrustedWriterError(
                f"{relpath} is signed by {who}, who may write only "
                f"{', '.join(describe_tag(t) for t in allowed)}: refusing to use it",
                hint="restore the file from the store's history; an owner can widen their access "
                "with 'secretstore recipients add KEY --project ID' (or --cluster, --team)",
            )
        return UntrustedWriterError(
            f"{relpath} is signed by {who}, whom you do not trust: refusing to use it",
            hint=f"if this is a teammate's key (check it with them), run: secretstore trust {signer}",
        )

    # --- messages -------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        if message in self._said:
            return
        self._said.add(message)
        if self._emit is not None:
            self._emit(message)
        else:
            from secretstore.console import notice

            notice(message)

    def _warn_unverified(self) -> None:
        if self.strict:
            raise TrustError(
                f"{ENV_KEY} is set without {ENV_TRUST}, so the store's writers cannot be verified",
                hint=f"set {ENV_TRUST} to the public keys of the store's writers (secretstore identity prints one)",
            )
        self._say(
            f"warning: the store's writers are not verified: {ENV_KEY} is set without {ENV_TRUST} "
            "(set it to the writers' public keys)"
        )

    def _notice_vouched(self, signer: str, tag: str) -> None:
        """'bob added carol to project prj42', once per key and reader (kept in the state)."""
        if signer in self.explicit() or signer in self.state.notified:
            return
        from secretstore.recipients import describe_tag

        store_wide, scoped, _revoked = self._derive()
        added_by = self.state.roster.get("added_by")
        adder_key = added_by.get(signer, "") if isinstance(added_by, dict) else ""
        adder = self.label_of(str(adder_key)) or short(str(adder_key)) or "a trusted writer"
        where = "the store" if signer in store_wide else ", ".join(describe_tag(t) for t in sorted(scoped.get(signer, ())))
        name = self.label_of(signer) or short(signer)
        self._say(f"{adder} added {name} ({short(signer)}) to {where}; trusting their writes there")
        if self.persistent:
            self.state.update(lambda fresh: fresh.notified.append(signer))

    def _first_contact(self) -> None:
        """Once per reader and store: whose writes the store holds, and how to trust them."""
        if self.mode != LOCAL or "first-contact" in self.state.notified or self._scan_signers is None:
            return
        signers = {k: v for k, v in self._scan_signers().items() if k not in self.explicit()}
        if not signers:
            return
        shown = ", ".join(f"{key} ({label})" if label else key for key, label in sorted(signers.items()))
        self._say(
            f"this store holds files written by {shown}, whom you do not trust yet; check each key "
            "with its owner (they print it with 'secretstore identity'), then run: secretstore trust KEY"
        )
        self.state.update(lambda fresh: fresh.notified.append("first-contact"))

    # --- writing ------------------------------------------------------------------------------

    def known_store_id(self) -> str:
        """The store id accepted so far (in the state, or during this command); "" when none."""
        return self.state.store_id or self._run_store_id

    def store_id_for_write(self, existing: str = "") -> str:
        """The id a new file of this store gets: the one known, else a new one."""
        known = self.state.store_id or self._run_store_id or existing
        if known:
            return known
        from secretstore import crypto
        from secretstore.keys import b64url
        from secretstore.scopefile import STORE_ID_BYTES

        self._run_store_id = b64url(crypto.random_bytes(STORE_ID_BYTES))
        return self._run_store_id

    def next_counter(self, relpath: str, current: int) -> int:
        """The counter of the next version of ``relpath``: above the file's and above any read here."""
        return max(current, self.state.counters.get(relpath, 0)) + 1

    def wrote(self, relpath: str, store_id: str, counter: int) -> None:
        """Record a version this reader just wrote, so an older one is refused from now on."""
        self.state.counters[relpath] = max(counter, self.state.counters.get(relpath, 0))
        self._run_store_id = self._run_store_id or store_id
        self._run_signed = True
        if self.mode == LOCAL or self.persistent:

            def record(fresh: State) -> None:
                _raise_counter(fresh, relpath, counter)
                fresh.signed = True
                fresh.store_id = fresh.store_id or store_id
                if self.me is not None and self.me.text not in fresh.writers and not scoped_only:
                    fresh.writers[self.me.text] = {"label": "", "how": HOW_SELF, "since": now()}

            scoped_only = self._scoped_only()
            self.state.update(record)

    def _scoped_only(self) -> bool:
        """Whether the roster this reader accepts lets the identity in use write some scopes only.

        The trust state belongs to the OS user, not to one identity: a cluster node's key used
        here once (``SECRETSTORE_IDENTITY``, ``SECRETSTORE_KEY``) must not be recorded as "you",
        trusted for every scope, when the roster limits it; it stays trusted for its own scopes
        through the roster. A roster this reader does not accept limits nobody."""
        if self.me is None:
            return False
        try:
            _store_wide, scoped, _revoked = self._derive()  # store-wide always holds the key in use
        except SecretStoreError:
            return False
        return self.me.text in scoped

    def trust_key(self, key: PublicKey, how: str = HOW_TRUST) -> bool:
        """Trust ``key`` as a writer of this store (explicitly); False when it already was."""
        if not key.can_sign:
            raise UsageError(
                f"{key.text} is a 0.1 key (ssk1) without a signing key: its writes cannot be verified",
                hint="ask its owner for their current key: 'secretstore identity' prints it",
            )
        if self._env_keys is not None and not self.state.exists and how == HOW_TRUST:
            pass  # creating the state file on purpose: the node keeps counters from now on
        text = key.text
        already = text in self.state.writers and text not in self.state.revoked
        if already and (not key.label or self.state.writers[text].get("label") == key.label):
            return False

        def add(fresh: State) -> None:
            fresh.revoked.pop(text, None)
            entry = fresh.writers.get(text) or {"label": "", "how": how, "since": now()}
            if key.label:
                entry["label"] = key.label
            fresh.writers[text] = entry
            if self.me is not None and self.me.text not in fresh.writers and not scoped_only:
                fresh.writers[self.me.text] = {"label": "", "how": HOW_SELF, "since": now()}

        scoped_only = self._scoped_only()
        self.state.update(add)
        return not already

    def untrust_key(self, key: PublicKey) -> bool:
        """Stop trusting ``key`` (also through the roster) until trusted again; False when it was not."""
        if self.me is not None and key.text == self.me.text:
            raise UsageError("refusing to stop trusting your own key")
        matches = [text for text in self.state.writers if PublicKey.decode(text) == key]
        if key.can_sign and key.text not in matches:
            matches.append(key.text)
        was = any(text in self.state.writers for text in matches)

        def drop(fresh: State) -> None:
            for text in matches:
                info = fresh.writers.pop(text, None) or {}
                fresh.revoked[text] = {"label": info.get("label", key.label), "since": now()}

        self.state.update(drop)
        return was

    def accept_revert(self, relpath: str, counter: int) -> None:
        """Accept ``relpath`` at ``counter`` although a newer version was read: an intentional revert."""

        def lower(fresh: State) -> None:
            fresh.counters[relpath] = counter

        self.state.update(lower)


def _raise_counter(state: State, relpath: str, counter: int) -> None:
    state.counters[relpath] = max(counter, state.counters.get(relpath, 0))


def _from_cache(cache: Mapping[str, object]) -> tuple[set[str], dict[str, set[str]], set[str]] | None:
    """The derived sets kept in the state, or None when they are not in the shape written."""
    store_wide, scoped, revoked = cache.get("store_wide"), cache.get("scoped"), cache.get("revoked")
    if not (isinstance(store_wide, list) and isinstance(scoped, dict) and isinstance(revoked, list)):
        return None
    if not all(isinstance(tags, list) for tags in scoped.values()):
        return None
    return {str(k) for k in store_wide}, {str(k): {str(t) for t in v} for k, v in scoped.items()}, {str(k) for k in revoked}
