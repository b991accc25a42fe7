"""A team store in git: ``secretstore git setup``, the merge driver, and ``git resolve``.

Every signed file ends in lines (counter, signature, MAC) that change on each
write, so two people changing one file always conflict for git's line merge.
The driver merges scope files entry by entry and the roster member by member:

- both sides (ours, theirs) must be signed by writers the local user trusts
  for that file, and each must descend from the common ancestor (a counter
  lower than the ancestor's, or equal with other bytes, is a rollback): such
  a file is refused, never merged. The ancestor is used only to tell which
  side changed what, and only if it verifies too;
- each name is merged three-way on its decrypted content: a change on one
  side wins, the same change on both sides is taken once. Different changes
  to one name leave that name, and only that name, in conflict: the file is
  written with the merged entries and the name's value from ours, behind a
  first line that makes every reader refuse it until
  ``secretstore git resolve ... --name NAME --ours|--theirs`` settles it;
- recipients are merged three-way by key, and never so as to widen access: a
  key one side added is kept (that side is a trusted writer), a key one side
  removed stays removed, a revoked key is never brought back, and without a
  common ancestor differing recipients are a conflict. The ancestor is whatever
  commit the other branch was cut from, so it is never alone proof of an add: a
  side's version of a name that the other side's history (in the file, or in git's
  history of ours) already held brings nothing new (``_stale``, ``git_lineage``),
  nor does a previous version of theirs that ours' file no longer holds but its
  git history did (ours purged it, or dropped it past the history limit): it is
  left out of the merged history (``_moved_past``),
  and in the roster a revoked key stays revoked (``merge_rosters``);
- a side sealed to a reader the result drops because the ancestor had it (the
  other side removed it) or it is revoked marks "rotate needed" every merged
  value that side held: that reader could read it there (``_sealed_to_removed``);
- whom a scope file's sides may be written by, which readers the roster revokes or lets
  read it, and its history limit come from the roster this merge produces when git merged
  recipients.toml before it (git writes the work tree only once every path is merged, so
  the work tree still holds ours': ``_MergeStore``), else from ours';
- the result is signed by the local user with a counter above both sides. If
  both sides still share the data key and the result drops no reader either
  side was sealed to, ciphertexts and stanzas are kept byte for byte; otherwise
  (one side rotated, or a dropped reader may hold the key) the result gets a
  fresh data key and every value is re-encrypted.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator

from secretstore import crypto, envelope, fsio, limits, recipients, scopefile
from secretstore.errors import NotRecipientError, SecretStoreError, TrustError, UsageError
from secretstore.keys import Identity, PublicKey
from secretstore.recipients import Member, Roster
from secretstore.scopefile import UNMERGED_MARKER, Entry, ScopeFile, Version
from secretstore.store import Scope, Store

DRIVER_NAME = "secretstore"
# -text: git must never change a store file's line ends (core.autocrlf=true on Windows would,
# on checkout): a signature covers the file's bytes, so a converted file is refused.
ATTRIBUTE_RULES = (
    "team.toml merge=secretstore -text",
    "projects/*.toml merge=secretstore -text",
    "clusters/*.toml merge=secretstore -text",
    "recipients.toml merge=secretstore -text",
)
ATTRIBUTES = (
    "# secretstore: merge scope files entry by entry, bytes as they are (run 'secretstore git setup' in each clone)",
    *ATTRIBUTE_RULES,
)
_UPDATED_RULES = {  # what 0.2.0's setup wrote -> what replaces it
    "# secretstore: merge scope files entry by entry (run 'secretstore git setup' in each clone)": ATTRIBUTES[0],
    **{rule.removesuffix(" -text"): rule for rule in ATTRIBUTE_RULES},
}


# A version of a name as git's history can see it without a key: (name, updated, writer).
VersionKey = tuple[str, str, "str | None"]
# Given versions of theirs (current or previous, or a deletion) that ours' file does not hold,
# those some version of ours' file in git's history of ours held: ours moved past them.
Lineage = Callable[[set[VersionKey]], set[VersionKey]]


class MergeConflictError(SecretStoreError):
    """The sides cannot be merged (or some names are left in conflict)."""


# A name's decrypted state: (current value or None when deleted, updated, writer, rotate,
# history as (updated, writer, value) triples)
_State = tuple[str | None, str, str | None, bool, tuple[tuple[str, str | None, str], ...]]
# One version of a name, decrypted: (updated, writer, value)
_Version = tuple[str, str | None, str]


class _Side:
    """One side of a scope-file merge, verified and (unless it is a base you cannot open) decrypted."""

    __slots__ = ("data", "file", "keys", "label", "states")

    def __init__(self, label: str, data: bytes, file: ScopeFile, keys: crypto.FileKeys | None,
                 states: dict[str, _State]) -> None:
        self.label = label
        self.data = data
        self.file = file
        self.keys = keys
        self.states = states

    def changed(self, name: str, base: _Side | None) -> bool:
        """Whether this side changed ``name`` since ``base``.

        Compared on decrypted content; against a base the caller cannot open
        (they were added after it), on the stored bytes, which an untouched
        entry keeps exactly.
        """
        if base is None:
            return name in self.states
        if base.keys is None:
            return self.file.entries.get(name) != base.file.entries.get(name)
        return self.states.get(name) != base.states.get(name)



# A merged file may get an "unmerged" marker line naming its conflicting names: room for it.
_MARKER_ROOM = 4 << 20


def _warning(message: str) -> None:
    from secretstore.console import warning_line

    warning_line(message)

def _decrypt_states(file: ScopeFile, keys: crypto.FileKeys, where: str) -> dict[str, _State]:
    def plain(name: str, version: Version) -> str:
        return scopefile.decrypt(file, keys, name, version, where)

    states: dict[str, _State] = {}
    for name, entry in file.entries.items():
        current = None if entry.current is None else plain(name, entry.current)
        history = tuple((v.updated, v.writer, plain(name, v)) for v in entry.history)
        states[name] = (current, entry.updated, entry.writer, entry.rotate, history)
    return states


def _open_side(store: Store, scope: Scope, data: bytes, label: str, path: str, identity: Identity) -> _Side:
    """A side the local user trusts and can open; MergeConflictError naming the side otherwise."""
    where = f"{path} ({label})"
    if data.startswith(UNMERGED_MARKER):
        raise MergeConflictError(f"{where} is itself unmerged: resolve it before merging it again")
    try:
        file = scopefile.parse(data, where)
        if (file.entity, file.scope_id) != (scope.entity, scope.scope_id):
            raise MergeConflictError(f"{path}: the sides hold different scopes; merge it by hand")
        unlocked = store.unlock_file(scope, file, identity, where, check_counter=False)
    except NotRecipientError as exc:
        raise NotRecipientError(f"{where}: {exc.message}") from None
    except TrustError as exc:
        raise MergeConflictError(exc.message, hint=exc.hint) from None
    return _Side(label, data, file, unlocked.keys, _decrypt_states(file, unlocked.keys, where))


def _open_base(store: Store, scope: Scope, data: bytes, path: str, identity: Identity) -> _Side | None:
    """The common ancestor, when it verifies: opened if possible, else kept for its stored bytes.

    An ancestor that does not verify (an untrusted writer, tampering) is no ancestor:
    the merge then proceeds as if there were none, which refuses any difference in recipients.
    """
    where = f"{path} (base)"
    try:
        file = scopefile.parse(data, where)
        if (file.entity, file.scope_id) != (scope.entity, scope.scope_id):
            return None
        body = store.verify(scope, file, identity.public, where, check_counter=False)
    except SecretStoreError:
        return None
    keys = envelope.unwrap(file, identity, where)
    if keys is None:  # added after the ancestor was written: compare stored bytes
        return _Side("base", data, file, None, {})
    envelope.verify_mac(file, keys, where, body)
    return _Side("base", data, file, keys, _decrypt_states(file, keys, where))


def _check_descends(side: _Side, base: _Side | None, path: str) -> None:
    """Refuse a side older than the common ancestor: it was put back from history."""
    if base is None or not base.file.signed or not side.file.signed:
        return
    if side.file.counter < base.file.counter or (
        side.file.counter == base.file.counter and _sealed(side) != _sealed(base)
    ):
        other = "theirs" if side.label == "ours" else "ours"
        raise MergeConflictError(
            f"{path} ({side.label}) is version {side.file.counter}, not newer than the common "
            f"ancestor's version {base.file.counter}: it was rolled back; refusing to merge it",
            hint=f"keep {other} (git checkout --{other} -- FILE) and find out who put the old file back",
        )


def _sealed(side: _Side) -> bytes:
    """A side's bytes without what follows its last seal (version 4: an append cut short, which
    no reader uses): a side that differs from the ancestor only there has not changed."""
    return side.data[: len(side.data) - side.file.unsealed] if side.file.unsealed else side.data


def _revoked(store: Store, identity: Identity, *, roster: bool = True) -> set[bytes]:
    """Reading keys the roster (unless ``roster`` is False) or the local user revoked: never
    brought back by a merge."""
    trust = store.trust(identity.public)
    texts = set(trust.state.revoked)
    try:
        accepted = trust.roster() if roster else None
    except SecretStoreError:
        accepted = None
    if accepted is not None:
        texts |= set(accepted.revoked)
    return {PublicKey.decode(text).box_key for text in texts}


def _roster_readers(store: Store, identity: Identity, scope: Scope) -> set[bytes] | None:
    """The reading keys the roster you accept lets read ``scope``; None without one (an unsigned store).

    A recipient only the other side has, missing from the ancestor, is kept only if the
    roster still lets it read this scope: the ancestor is chosen by whoever cut the
    branch, so "added by theirs" may be an old file replayed from before a member was
    removed from this one scope (their key is revoked store-wide only when they leave)."""
    from secretstore.recipients import scope_tag

    try:
        accepted = store.trust(identity.public).roster()
    except SecretStoreError:
        return None
    if accepted is None or not accepted.signed:
        return None
    tag = scope_tag(scope.entity, scope.scope_id)
    return {member.key.box_key for member in accepted.members if member.covers(tag)}


def _merge_recipients(base: _Side | None, ours: _Side, theirs: _Side, revoked: set[bytes],
                      path: str, readers: set[bytes] | None = None) -> list[PublicKey]:
    """Three-way by reading key; never wider than what a trusted side decided, nor than
    the roster (``readers``, when there is one) lets read the scope."""

    our_keys, their_keys = _readers(ours.file), _readers(theirs.file)
    if base is None:
        if set(our_keys) != set(their_keys):
            raise MergeConflictError(
                f"{path}: the sides have no common ancestor and are sealed to different recipients; "
                "refusing to guess who may read it",
                hint="keep one side (git checkout --ours -- FILE, or --theirs), then run "
                "'secretstore recipients add' for anyone missing",
            )
        base_keys = our_keys
    else:
        base_keys = _readers(base.file)
    merged: list[PublicKey] = []
    for box_key, key in [*our_keys.items(), *their_keys.items()]:
        if any(k.box_key == box_key for k in merged):
            continue
        in_ours, in_theirs = box_key in our_keys, box_key in their_keys
        if in_ours and in_theirs:
            merged.append(_newer_spelling(our_keys[box_key], their_keys[box_key], base_keys.get(box_key)))
        elif box_key in base_keys:
            continue  # one side removed it: a removal stays removed
        elif box_key not in revoked and (readers is None or box_key in readers or box_key in our_keys):
            merged.append(key)  # added by one (trusted) side
    return merged


def _readers(file: ScopeFile) -> dict[bytes, PublicKey]:
    """The file's recipients by reading key."""
    return {key.box_key: key for key in (PublicKey.decode(s.public_key, s.label) for s in file.recipients)}


def _sealed_to_removed(file: ScopeFile, kept: set[bytes], removed: set[bytes]) -> bool:
    """Whether ``file`` is sealed to a reader the merged file (sealed to ``kept``) drops and that
    is ``removed``: the ancestor had it (a side removed it since) or it is revoked. Such a
    reader could read every value ``file`` holds: "rotate needed" on those the merge keeps."""
    return bool((set(_readers(file)) - kept) & removed)


def _newer_spelling(ours: PublicKey, theirs: PublicKey, base: PublicKey | None) -> PublicKey:
    """The same reader on both sides: the side that changed its key text or label since the base."""
    if base is not None and (ours.text, ours.label) == (base.text, base.label):
        return theirs
    return ours


def merge_scope_files(
    base: bytes | None, ours: bytes, theirs: bytes, identity: Identity, path: str = "scope file",
    store: Store | None = None, scope: Scope | None = None, lineage: Lineage | None = None,
) -> tuple[bytes, list[str]]:
    """The three-way merge of a scope file, signed by ``identity``, and the names left in conflict.

    With conflicts, the returned file holds ours' state of those names (the
    caller marks the file unmerged). MergeConflictError when the sides cannot
    be merged at all. ``lineage`` (the driver's: git's history of ours) tells
    which of theirs' versions, current or previous, ours already had and dropped
    (see ``_stale``, ``_moved_past``): neither is brought back.
    """
    if scope is None:
        head = scopefile.parse(ours, path)
        scope = Scope(head.entity, head.scope_id)
    if store is None:
        store = Store(os.getcwd())
    our_side = _open_side(store, scope, ours, "ours", path, identity)
    their_side = _open_side(store, scope, theirs, "theirs", path, identity)
    base_side = _open_base(store, scope, base, path, identity) if base else None
    for side in (our_side, their_side):
        _check_descends(side, base_side, path)
    store_ids = {s.file.store_id for s in (our_side, their_side) if s.file.signed}
    if len(store_ids) > 1:
        raise MergeConflictError(f"{path}: the sides belong to different stores; refusing to merge them")

    chosen: dict[str, tuple[_Side | None, _State]] = {}  # side None: a state made here (merged history)
    conflicts = []
    names = set(our_side.file.entries) | set(their_side.file.entries)
    if base_side is not None:
        names |= set(base_side.file.entries)
    keep = store.history_limit(identity)
    moved_past = _moved_past(our_side, their_side, base_side, lineage)
    for name in sorted(names):
        o, t = our_side.states.get(name), their_side.states.get(name)
        # theirs' previous versions ours moved past: no merged history holds them (a purge stands)
        gone = _gone(t, o, name, moved_past)
        pick: tuple[_Side | None, _State | None]
        if o == t or not their_side.changed(name, base_side):
            pick = (our_side, o)
        elif _stale(t, o):
            pick = _ours_stands(our_side, o, t, keep, gone)
        elif not our_side.changed(name, base_side):
            pick = (None, _without(t, gone)) if gone and t is not None else (their_side, t)
        elif o is not None and t is not None and o[0] == t[0]:
            pick = (None, _same_value(o, t, keep, gone))  # the same value on both sides: histories merged
        elif _value_of(t) == _value_of(base_state := _base_state(base_side, name)) and o is not None:
            pick = (None, _merged_history(o, t, keep, gone))  # theirs changed only history (set, then deleted)
        elif _value_of(o) == _value_of(base_state) and t is not None:
            pick = (None, _merged_history(t, o, keep, gone))
        else:
            conflicts.append(name)
            pick = (our_side, o)
        if (t is not None and pick[1] is not None and pick[1][:3] == t[:3] and (o is None or o[:3] != t[:3])
                and (name, t[1], t[2]) in moved_past):
            # the merge would take theirs' version, which ours' history held and moved past
            # (changed, deleted, purged): ours' state stands
            pick = _ours_stands(our_side, o, t, keep, gone)
        if pick[1] is not None:
            chosen[name] = (pick[0], pick[1])

    revoked = _revoked(store, identity)
    recipients_merged = _merge_recipients(base_side, our_side, their_side, revoked, path,
                                          _roster_readers(store, identity, scope))
    kept = {r.box_key for r in recipients_merged}
    removed = revoked | (set(_readers(base_side.file)) if base_side is not None else set())
    for side in (our_side, their_side):
        if _sealed_to_removed(side.file, kept, removed):  # what it held, they could read
            for name, (_from, state) in list(chosen.items()):
                if not state[3] and _exposed_value(state) in _held(side.states.get(name)):
                    chosen[name] = (None, (state[0], state[1], state[2], True, state[4]))
    our_keys, their_keys = our_side.keys, their_side.keys
    assert our_keys is not None and their_keys is not None  # both were opened
    # A reader the result drops may hold a side's data key (an add does not change it): never keep it.
    dropped = any(set(_readers(side.file)) - kept for side in (our_side, their_side))
    same_key = our_keys.data_key == their_keys.data_key and not dropped
    keys = our_keys if same_key else envelope.new_keys()
    merged = ScopeFile(scope.entity, scope.scope_id, [])
    if same_key:
        stanzas = {
            PublicKey.decode(s.public_key).box_key: s
            for s in [*their_side.file.recipients, *our_side.file.recipients]
        }
        merged.recipients = [
            scopefile.SealedKey(r.text, stanzas[r.box_key].sealed_key, r.label) for r in recipients_merged
        ]
        merged.entries = {
            name: side.file.entries[name] if side is not None else _entry_from_state(merged, keys, name, state)
            for name, (side, state) in chosen.items()
        }
    else:
        merged.recipients = envelope.stanzas(recipients_merged, keys)
        for name, (_side, state) in chosen.items():
            merged.entries[name] = _entry_from_state(merged, keys, name, state)
    trust = store.trust(identity.public)
    counter = trust.next_counter(scope.relpath, max(our_side.file.counter, their_side.file.counter))
    store_id = next(iter(store_ids)) if store_ids else trust.store_id_for_write()
    data = envelope.seal(merged, keys, identity, store_id=store_id, counter=counter, warn=_warning,
                         max_bytes=limits.MAX_SCOPE_FILE_BYTES - _MARKER_ROOM)
    trust.wrote(scope.relpath, store_id, counter)
    return data, conflicts


def _base_state(base: _Side | None, name: str) -> _State | None:
    return None if base is None or base.keys is None else base.states.get(name)


def _value_of(state: _State | None) -> str | None:
    return None if state is None else state[0]


def _stale(theirs: _State | None, ours: _State | None) -> bool:
    """Whether ours' history already holds theirs' current version, so theirs brings nothing new.

    A version is its value, time and writer (the nonce changes when a rotation
    re-encrypts it; those three never do). Ours holding it as a *previous* version
    means ours replaced or deleted it since, whatever the base says: the base is
    whatever commit the other branch was cut from, so an old, genuinely signed file
    committed on a branch off a commit from before the name existed would otherwise
    look like "theirs added it" and bring a deleted value back.
    """
    if theirs is None or ours is None or theirs[0] is None:
        return False
    return (theirs[1], theirs[2], theirs[0]) in ours[4]


def _versions(state: _State | None) -> set[_Version]:
    """The versions of a name a side's file holds: current (unless deleted) and previous."""
    if state is None:
        return set()
    return set(state[4]) | ({(state[1], state[2], state[0])} if state[0] is not None else set())


def _moved_past(ours: _Side, theirs: _Side, base: _Side | None, lineage: Lineage | None) -> set[VersionKey]:
    """Theirs' versions of the names theirs changed (current, previous, or a deletion) that
    ours' file does not hold but some version of it in git's history of ours held.

    Ours had those and moved past them: changed, deleted, purged, or dropped past the
    history limit (the file keeps no trace of which: a purge and a trim look alike, and
    both stay dropped, so a purged value never comes back through the other side's copy
    of the name's history). Versions ours never held (a change made only on the other
    branch) are not found and merge as before. One pass over git's history for the file.
    """
    if lineage is None:
        return set()
    wanted: set[VersionKey] = set()
    for name, t in theirs.states.items():
        o = ours.states.get(name)
        if o == t or not theirs.changed(name, base):
            continue  # ours' state is taken
        if o is None or o[:3] != t[:3]:
            wanted.add((name, t[1], t[2]))
        wanted |= _history_not_held(name, t, o)
    return lineage(wanted) if wanted else set()


def _history_not_held(name: str, theirs: _State, ours: _State | None) -> set[VersionKey]:
    """Theirs' previous versions of ``name`` that ours' file does not hold, as git's history sees them."""
    mine = _versions(ours)
    return {(name, when, who) for when, who, value in theirs[4] if (when, who, value) not in mine}


def _gone(theirs: _State | None, ours: _State | None, name: str, moved_past: set[VersionKey]) -> frozenset[_Version]:
    """Theirs' previous versions of ``name`` that ours moved past (``_moved_past``): left out
    of any history the merge makes. Never one ours' file still holds."""
    if theirs is None or not moved_past:
        return frozenset()
    mine = _versions(ours)
    return frozenset(v for v in theirs[4] if v not in mine and (name, v[0], v[1]) in moved_past)


def _without(state: _State, gone: frozenset[_Version]) -> _State:
    """``state`` with the previous versions in ``gone`` left out."""
    return (state[0], state[1], state[2], state[3], tuple(v for v in state[4] if v not in gone))


def _ours_stands(ours: _Side, o: _State | None, t: _State | None, keep: int,
                 gone: frozenset[_Version] = frozenset()) -> tuple[_Side | None, _State | None]:
    """Ours' state of a name whose version in theirs ours has moved past: ours' value and
    history (none when ours purged it), with theirs' history (but for ``gone``) and "rotate
    needed" merged in as ``_merged_history`` does when ours still holds the name."""
    if o is None:
        return (ours, None)
    kept = _merged_history(o, t, keep, gone)
    return (ours, o) if kept == o else (None, kept)


def _merged_history(chosen: _State, other: _State | None, keep: int,
                    gone: frozenset[_Version] = frozenset()) -> _State:
    """``chosen``'s value, with the other side's history versions merged in, but for ``gone``
    (theirs' versions ours moved past: ``_gone``).

    "Rotate needed" is kept from the other side too when the chosen value is one
    that side held (current or previous) when it was marked: a recipient removed
    there could read it, whichever side brought the value back (a rollback, an undelete).
    That looks at all the other side held, ``gone`` included: more marks, never fewer.
    """
    if other is None:
        return chosen
    versions = sorted((set(chosen[4]) | set(other[4])) - gone, key=lambda v: (v[0], v[1] or "", v[2]))
    rotate = chosen[3] or (other[3] and _exposed_value(chosen) in {other[0], *(v[2] for v in other[4])})
    return (chosen[0], chosen[1], chosen[2], rotate, tuple(versions[-keep:]) if keep > 0 else ())


def _held(state: _State | None) -> set[str]:
    """Every value a side holds for a name: current and previous."""
    if state is None:
        return set()
    return {value for value in (state[0], *(v[2] for v in state[4])) if value is not None}


def _exposed_value(state: _State) -> str | None:
    """The value "rotate needed" is about: the current one, or on a deleted name the one undelete brings back."""
    if state[0] is not None:
        return state[0]
    return state[4][-1][2] if state[4] else None


def _same_value(ours: _State, theirs: _State, keep: int, gone: frozenset[_Version] = frozenset()) -> _State:
    """Both sides hold the same value (or both deleted it): the later change, and both histories.

    History versions are merged entry by entry (each once, oldest first), but for
    ``gone`` (theirs' versions ours moved past: ``_gone``), and the newest ``keep``
    are kept, as a write would.
    """
    later = ours if ours[1] >= theirs[1] else theirs
    merged = _merged_history(later, ours if later is theirs else theirs, keep, gone)
    return (merged[0], merged[1], merged[2], ours[3] or theirs[3], merged[4])


def _entry_from_state(file: ScopeFile, keys: crypto.FileKeys, name: str, state: _State) -> Entry:
    current, updated, writer, rotate, history = state
    return Entry(
        None if current is None else scopefile.encrypt(file, keys, name, current, updated, writer),
        updated,
        tuple(scopefile.encrypt(file, keys, name, value, when, who) for when, who, value in history),
        writer,
        rotate,
    )


# --- the roster ------------------------------------------------------------------------


def _open_roster(store: Store, data: bytes, label: str, identity: Identity) -> Roster:
    where = f"{recipients.FILENAME} ({label})"
    if data.startswith(UNMERGED_MARKER):
        raise MergeConflictError(f"{where} is itself unmerged: resolve it before merging it again")
    try:
        return store.trust(identity.public).accept_roster(data, where, check_counter=False)
    except TrustError as exc:
        raise MergeConflictError(exc.message, hint=exc.hint) from None


def merge_rosters(base: bytes | None, ours: bytes, theirs: bytes, identity: Identity, store: Store) -> bytes:
    """Three-way merge of ``recipients.toml`` by member; the result signed by ``identity``.

    Revocations are never undone by a merge: the result revokes every key any side
    (ours, theirs, the base) revokes, and a key revoked anywhere, or untrusted by the
    local user, is a member afterwards only if ours lists it and the base already
    revoked it (you added it back since). Theirs' member lists alone cannot tell a
    re-add from a replay: an old roster a trusted writer signed, committed on a branch
    off a commit from before that key was added, looks exactly like "theirs added it".
    Losing a genuine re-add on their side costs one ``recipients add``; keeping a replayed
    one would seal every new value to a removed member.
    """
    our_roster = _open_roster(store, ours, "ours", identity)
    their_roster = _open_roster(store, theirs, "theirs", identity)
    base_roster: Roster | None = None
    if base:
        try:
            base_roster = _open_roster(store, base, "base", identity)
        except SecretStoreError:
            base_roster = None
    path = recipients.FILENAME
    for side, label in ((our_roster, "ours"), (their_roster, "theirs")):
        if base_roster is not None and base_roster.signed and side.signed and side.counter < base_roster.counter:
            raise MergeConflictError(
                f"{path} ({label}) is version {side.counter}, older than the common ancestor's "
                f"version {base_roster.counter}: it was rolled back; refusing to merge it",
            )
    if our_roster.signed and their_roster.signed and our_roster.store_id != their_roster.store_id:
        raise MergeConflictError(f"{path}: the sides belong to different stores; refusing to merge them")

    def by_key(roster: Roster | None) -> dict[bytes, Member]:
        return {} if roster is None else {m.key.box_key: m for m in roster.members}

    o, t = by_key(our_roster), by_key(their_roster)
    b = by_key(base_roster) if base_roster is not None else None
    if b is None and set(o) != set(t):
        raise MergeConflictError(
            f"{path}: the sides have no common ancestor and list different members; refusing to guess",
            hint="keep one side (git checkout --ours -- FILE, or --theirs), then 'secretstore recipients add' the rest",
        )
    base_members = b if b is not None else o
    revoked = _revoked_keys(our_roster, their_roster, base_roster)
    untrusted = revoked | _revoked(store, identity, roster=False)
    base_revoked = _revoked_keys(base_roster)
    members: list[Member] = []
    for box_key in sorted(set(o) | set(t)):
        mine, other, old = o.get(box_key), t.get(box_key), base_members.get(box_key)
        if mine is None and box_key in untrusted:
            continue  # a revoked key is never brought back by a merge (a replayed old roster lists it)
        if mine is not None and box_key in revoked and box_key not in base_revoked:
            continue  # the other side revoked it since the base: the removal stands
        # (ours lists a key the base revoked: you added it back since, which stands)
        if mine is not None and other is not None:
            chosen = _three_way(mine, other, old)
            if isinstance(chosen, Member):
                members.append(chosen)
            else:
                raise MergeConflictError(
                    f"{path}: both sides changed the member {mine.public_key}; merge it by hand",
                    hint="keep one side (git checkout --ours -- FILE, or --theirs), then redo the other change",
                )
        elif old is None:
            members.append(mine if mine is not None else other)  # type: ignore[arg-type]
        # else: one side removed it, which stands
    kept = {m.key.box_key for m in members}
    spelled = {  # one text per key, ours' spelling first
        PublicKey.decode(text).box_key: text
        for roster in (base_roster, their_roster, our_roster) if roster is not None for text in roster.revoked
    }
    revoked_texts = sorted(text for box_key, text in spelled.items() if box_key not in kept)
    base_history = our_roster.history if base_roster is None else base_roster.history
    history = _three_way(our_roster.history, their_roster.history, base_history)
    if history is _CONFLICT:
        raise MergeConflictError(f"{path}: both sides changed the history limit; merge it by hand")
    assert history is None or isinstance(history, int)
    merged = Roster(members, revoked=tuple(revoked_texts), history=history)
    merged.store_id = our_roster.store_id or their_roster.store_id
    merged.counter = max(our_roster.counter, their_roster.counter)
    trust = store.trust(identity.public)
    store_id = merged.store_id or trust.store_id_for_write()
    counter = trust.next_counter(path, merged.counter)
    merged.members = [
        m if m.endorsement and recipients.endorsement_valid(m, store_id) else recipients.endorse(m, identity, store_id)
        for m in merged.members
    ]
    data = recipients.sign(merged, identity, store_id=store_id, counter=counter)
    trust.wrote(path, store_id, counter)
    return data


def _revoked_keys(*rosters: Roster | None) -> set[bytes]:
    """The reading keys any of ``rosters`` lists as revoked.

    The base counts too: it is a roster a trusted writer signed, and the attacker picks
    which one (by branching off an old commit), so a key it revoked is not taken as
    "added by the other side" when an even older roster listing it is replayed.
    """
    return {PublicKey.decode(text).box_key for r in rosters if r is not None for text in r.revoked}


_CONFLICT = object()


# --- the roster of the merge in progress -------------------------------------------------
#
# Git merges one path at a time and writes the work tree only once every path is merged
# (ort, git's default): while it merges a scope file, recipients.toml in the work tree is
# still ours', whether or not git has merged the roster already. The roster merge signs
# the merged roster with a counter above ours' and records that counter as read (a roster
# put back later is refused like any rollback), so a scope-file merge after it would find
# the work tree's roster rolled back. It must use the merged roster anyway: it holds what
# theirs changed too (a member they removed must not stay sealed into a file ours added them
# to). The roster merge leaves it beside the reader's trust state, and a scope-file merge uses
# it in place of the work tree's while nothing has moved since: HEAD is the one merged into,
# the work tree holds the very roster merged as ours, and the newest roster counter the
# reader accepted is the merged one's. It is then checked like any roster (signature, trust,
# counter); otherwise the work tree's is read and checked as always.

_MERGED_ROSTER = b"secretstore-merged-roster/v1"


def _merged_roster_path(store_root: str) -> str:
    from secretstore.trust import state_path

    return state_path(store_root) + ".merge"


def _git_head(root: str) -> str:
    """The commit checked out at ``root`` (what git merges into); "" when git cannot say."""
    try:
        done = subprocess.run(["git", "-C", root, "rev-parse", "--verify", "-q", "HEAD"],
                              capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _digest(data: bytes) -> str:
    return crypto.checksum(data, 32).hex()


def _keep_merged_roster(store: Store, identity: Identity, ours: bytes, merged: bytes) -> None:
    """Leave the roster this merge produced for the scope files git merges after it."""
    trust = store.trust(identity.public)
    if not trust.persistent:  # no counter was recorded: the work tree's roster reads as before
        return
    counter = trust.state.counters.get(recipients.FILENAME, 0)
    header = f"head\t{_git_head(store.root)}\nours\t{_digest(ours)}\ncounter\t{counter}\n"
    fsio.atomic_write(_merged_roster_path(store.root), _MERGED_ROSTER + b"\n" + header.encode() + b"\n" + merged)


class _MergeStore(Store):
    """The store as the driver of one scope file sees it: the roster is the one this merge
    produced when git merged recipients.toml first, else the work tree's."""

    _kept: tuple[bytes, bytes | None] | None = None  # (work tree's roster, what stands for it)

    def read_roster_bytes(self) -> bytes | None:
        data = super().read_roster_bytes()
        if data is None:
            return None
        if self._kept is None or self._kept[0] != data:
            self._kept = (data, self._merged_roster(data))
        merged = self._kept[1]
        return data if merged is None else merged

    def _merged_roster(self, ours: bytes) -> bytes | None:
        try:
            kept = fsio.read_private_file(_merged_roster_path(self.root))
        except SecretStoreError:
            return None
        if kept is None:
            return None
        header, _sep, merged = kept.partition(b"\n\n")
        lines = header.decode("utf-8", "replace").split("\n")
        fields = dict(line.partition("\t")[::2] for line in lines[1:])
        if lines[0] != _MERGED_ROSTER.decode() or not merged:
            return None
        if fields.get("ours") != _digest(ours) or fields.get("head") != _git_head(self.root):
            return None  # another merge's, or the work tree changed since
        if fields.get("counter") != str(self.state().counters.get(recipients.FILENAME, 0)):
            return None  # a newer roster was read since, or an older one accepted (accept-revert)
        return merged


def _three_way(ours: object, theirs: object, base: object) -> object:
    """The side that changed since ``base`` (ours when neither or both did alike); _CONFLICT otherwise."""
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    return _CONFLICT


# --- the driver -------------------------------------------------------------------------


def store_relpath(path: str) -> str | None:
    """The path of git's ``%P`` inside the store: ``team.toml``, ``projects/ID.toml``, ... or None."""
    parts = path.replace(os.sep, "/").split("/")
    if parts[-1] in ("team.toml", recipients.FILENAME):
        return parts[-1]
    if len(parts) >= 2 and parts[-2] in ("projects", "clusters") and parts[-1].endswith(".toml"):
        return "/".join(parts[-2:])
    return None


def scope_of_relpath(relpath: str) -> Scope | None:
    if relpath == "team.toml":
        return Scope("team")
    folder, _sep, filename = relpath.partition("/")
    entity = {"projects": "project", "clusters": "cluster"}.get(folder)
    if entity is None:
        return None
    return Scope(entity, filename[: -len(".toml")])


def _read_side(temp: str, path: str, side: str) -> bytes | None:
    """One of git's temp files for ``path``; a refusal names ``path`` and the side, not the temp file."""
    try:
        return fsio.read_file(temp)
    except SecretStoreError as exc:
        exc.message = exc.message.replace(temp, f"{path} ({side})")
        exc.args = (exc.message,)
        raise


def git_lineage(path: str, cwd: str = ".") -> Lineage:
    """A ``Lineage`` that reads every version of ``path`` in the history of git's HEAD (ours).

    The merge base cannot say whether a name present only in theirs was added there or
    is an old version replayed on a branch cut from before the name existed: a purge
    leaves no trace in the file. Ours' history can: if some version of the file ours
    descends from already held theirs' version of the name, current or previous (same
    name, time and writer: plaintext, so no key is needed to look, and what a rotation's
    re-encryption keeps, unlike the nonce), ours has seen that version and moved past it
    (deleted, purged, changed, or dropped past the history limit), and theirs brings
    nothing new: neither as the current value nor in the name's history. Looking finds
    only narrowing: a crafted old commit in ours' history can at worst keep theirs'
    version out. Without git (or a HEAD) nothing is found, and the merge is the plain
    three-way one.
    """

    def held(wanted: set[VersionKey]) -> set[VersionKey]:
        found: set[VersionKey] = set()
        for blob in _blobs_of(path, cwd):
            keys = _version_keys(blob)
            loose = {(name, updated) for name, updated, _writer in keys}  # a version with no writer (0.1)
            found |= {key for key in wanted - found if key in keys or (key[2] is None and key[:2] in loose)}
            if len(found) == len(wanted):
                break
        return found

    return held


_VERSION_HEAD = re.compile(  # an entry, an earlier version, or (version 4) an update in a section
    rb"\n(?:\[secrets\.([A-Za-z][A-Za-z0-9_]*)\]|\[\[secrets\.([A-Za-z][A-Za-z0-9_]*)\.(?:history|update)\]\])\n"
    rb'updated = "([^"\n]*)"\n(?:writer = "([^"\n]*)"\n)?'
)


def _version_keys(blob: bytes) -> set[VersionKey]:
    """The (name, updated, writer) of every version a file holds, current (or a deletion) and previous."""
    return {
        ((m[1] or m[2]).decode("ascii"), m[3].decode("utf-8", "replace"),
         None if m[4] is None else m[4].decode("utf-8", "replace"))
        for m in _VERSION_HEAD.finditer(blob)
    }


def _blobs_of(path: str, cwd: str) -> Iterator[bytes]:
    """Each distinct version of ``path`` in HEAD's history, newest first; none if git cannot say."""
    try:
        log = subprocess.run(
            ["git", "log", "--format=", "--raw", "--no-abbrev", "--no-renames", "HEAD", "--", f":(literal){path}"],
            cwd=cwd, capture_output=True, check=False,
        )
    except OSError:
        return
    if log.returncode != 0:
        return
    shas = dict.fromkeys(
        fields[3] for fields in (line.split() for line in log.stdout.decode("ascii", "replace").splitlines())
        if len(fields) >= 5 and fields[0].startswith(":") and fields[3].strip("0")
    )
    if not shas:
        return
    with subprocess.Popen(["git", "cat-file", "--batch"], cwd=cwd, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as batch:
        assert batch.stdin is not None and batch.stdout is not None
        for sha in shas:  # one at a time: all at once can deadlock once both pipes fill
            batch.stdin.write(f"{sha}\n".encode())
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                continue  # missing (a shallow clone): nothing to read for it
            size = int(header[2])
            data = batch.stdout.read(size)
            batch.stdout.read(1)  # the newline after each object
            yield data
        batch.stdin.close()
        batch.stdout.close()


def run_merge_driver(base: str, ours: str, theirs: str, path: str, identity: Identity) -> None:
    """The git merge driver: merge into ``ours`` (git's %A) or raise.

    Git runs it at the top of the work tree; ``path`` (%P) is relative to it,
    so the store is the directory that holds the file. On a conflict the
    result (or, for a file that cannot be merged at all, ours unchanged) is
    written behind the unmerged marker, so no reader uses it before it is resolved.
    """
    relpath = store_relpath(path)
    if relpath is None:
        raise MergeConflictError(f"{path} is not a secretstore file; the merge driver leaves it alone")
    store_root = os.path.abspath(path[: len(path) - len(relpath)] or ".")
    store = Store(store_root) if relpath == recipients.FILENAME else _MergeStore(store_root)
    base_bytes = _read_side(base, path, "the common ancestor") or b""
    our_bytes = _read_side(ours, path, "ours")
    their_bytes = _read_side(theirs, path, "theirs")
    if our_bytes is None or their_bytes is None:
        raise SecretStoreError(f"{path}: git gave the merge driver a missing file")
    if not base_bytes.strip():  # added on both sides: no common ancestor
        base_bytes = b""
    shown = path
    try:
        if relpath == recipients.FILENAME:
            merged_roster = merge_rosters(base_bytes or None, our_bytes, their_bytes, identity, store)
            _keep_merged_roster(store, identity, our_bytes, merged_roster)
            fsio.atomic_write(ours, merged_roster)
            return
        scope = scope_of_relpath(relpath)
        assert scope is not None
        result, conflicts = merge_scope_files(
            base_bytes or None, our_bytes, their_bytes, identity, shown, store, scope, git_lineage(path)
        )
    except MergeConflictError as exc:
        if not our_bytes.startswith(UNMERGED_MARKER):
            reason = exc.message.replace("\n", " ")[:400].encode("utf-8", "replace")
            fsio.atomic_write(ours, UNMERGED_MARKER + b"* " + reason + b"\n" + our_bytes)
        raise
    _record_merge(store, scope, our_bytes, result, conflicts, identity)
    if conflicts:
        fsio.atomic_write(ours, UNMERGED_MARKER + " ".join(conflicts).encode() + b"\n" + result)
        raise MergeConflictError(
            f"{shown}: both sides changed {', '.join(conflicts)}; every other entry was merged",
            hint=f"for each name run: secretstore git resolve {_resolve_args(scope)} --name NAME --ours "
            "(or --theirs); then git add the file",
        )
    fsio.atomic_write(ours, result)


def _record_merge(store: Store, scope: Scope, ours: bytes, result: bytes, conflicts: list[str],
                  identity: Identity) -> None:
    """The audit line of a merge: the names whose entry the merge changed in your file (never values)."""
    from secretstore.commands.secrets import record

    try:
        before = scopefile.parse(ours, scope.relpath).entries
        after = scopefile.parse(result, scope.relpath).entries
        changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    except SecretStoreError:  # the log never breaks a merge
        return
    record(store, "git merge", scope, changed, identity,
           detail=f"unmerged: {' '.join(conflicts)}" if conflicts else "")


def _resolve_args(scope: Scope) -> str:
    return scope.entity if scope.scope_id is None else f"{scope.entity} --id {scope.scope_id}"


# --- resolving a name --------------------------------------------------------------------


def resolve(store: Store, scope: Scope, name: str, side: str, identity: Identity) -> list[str]:
    """Settle one name left in conflict by the driver with its value from ``side`` (ours or theirs).

    The other side's file comes from git's index (stage 2 for ours, 3 for
    theirs, as ``git checkout --ours/--theirs`` uses them). Nothing but that
    name changes. Returns the names still in conflict; with none left, the
    file is written without the marker.

    Only a file the driver wrote for this user, in a merge still in progress, is
    resolved (``_check_left_by_driver``): the result is signed by you with a counter
    above everything read, so resolving a file committed with a marker in front of an
    old, genuinely signed body would re-sign that old body (old recipients, old data
    key, no rotate marks) as the newest version.
    """
    assert side in ("ours", "theirs")
    data = store.read_bytes(scope)
    if data is None:
        raise SecretStoreError(f"{scope} has no secrets file")
    pending = scopefile.unmerged_names(data)
    if pending is None:
        raise UsageError(f"{scope.relpath} is not unmerged: nothing to resolve")
    if b"\n" not in data:
        raise SecretStoreError(
            f"{scope.relpath} is only an unmerged marker line, with no file after it: "
            "the merge driver never writes that; refusing to resolve it",
            hint=f"restore it from history (git log -- {scope.relpath}), or ask who wrote it",
        )
    if not pending:
        raise UsageError(
            f"{scope.relpath} could not be merged at all, so there is no name to resolve",
            hint=f"keep one side: git checkout --ours -- {scope.relpath} (or --theirs), then git add it",
        )
    if name not in pending:
        raise UsageError(f"{name} is not in conflict in {scope.relpath} (in conflict: {', '.join(pending)})")
    from secretstore.errors import RollbackError

    body = data[data.index(b"\n") + 1 :]
    with fsio.locked(store.root):
        merged_file = store.parse(scope, body)
        their_bytes = _check_left_by_driver(store, scope, data, merged_file, identity)
        try:  # checked as any read, counter included: the driver recorded the one it signed with
            unlocked = store.unlock_file(scope, merged_file, identity)
        except RollbackError as exc:
            raise RollbackError(
                f"{exc.message} (not the file your merge left)",
                hint=f"to merge it again: git checkout -m -- {scope.relpath}",
            ) from None
        if side == "theirs":
            other = store.unlock_file(scope, store.parse(scope, their_bytes), identity,
                                      f"{scope.relpath} (theirs)", check_counter=False)
            state = _decrypt_states(other.file, other.keys, scope.relpath).get(name)
            if state is not None:  # the driver's rule: no version ours moved past (a purge) comes back
                mine = _decrypt_states(unlocked.file, unlocked.keys, scope.relpath).get(name)
                wanted = _history_not_held(name, state, mine)
                if wanted:
                    state = _without(state, _gone(state, mine, name, git_lineage(scope.relpath, store.root)(wanted)))
            if state is not None and not state[3] and _sealed_to_removed(
                other.file, set(_readers(merged_file)), _revoked(store, identity) | _base_readers(store.root, scope)
            ):  # the driver's rule: theirs was sealed to a reader the merge removed
                state = (state[0], state[1], state[2], True, state[4])
            if state is None:
                unlocked.file.entries.pop(name, None)
            else:
                unlocked.file.entries[name] = _entry_from_state(unlocked.file, unlocked.keys, name, state)
        remaining = [n for n in pending if n != name]
        trust = store.trust(identity.public)
        counter = trust.next_counter(scope.relpath, merged_file.counter)
        sealed = envelope.seal(unlocked.file, unlocked.keys, identity, store_id=merged_file.store_id,
                               counter=counter, warn=_warning, max_bytes=limits.MAX_SCOPE_FILE_BYTES - _MARKER_ROOM)
        if remaining:
            sealed = UNMERGED_MARKER + " ".join(remaining).encode() + b"\n" + sealed
        fsio.atomic_write(store.path(scope), sealed)
        trust.wrote(scope.relpath, merged_file.store_id, counter)
    return remaining


def _check_left_by_driver(store: Store, scope: Scope, data: bytes, merged: ScopeFile, identity: Identity) -> bytes:
    """Refuse an unmerged file the merge driver did not write for you in a merge in progress;
    return git's theirs of it (stage 3).

    The marker is a line anyone who can push can commit, in front of any file a trusted
    writer once signed. Only the driver's own output has all of: git's index holds the path
    in conflict with both sides (the driver runs only then); the file is not git's ours as
    it was (a side the driver refuses, one already marked for one, is left untouched) and its
    counter is above both sides' (the driver signs above both, as each resolve after it
    does); and you signed it (the driver signs as the local user).
    """
    relpath = scope.relpath
    stages = _conflict_stages(store.root, relpath)
    if not stages:
        raise SecretStoreError(
            f"{relpath} is marked unmerged but git has no merge of it in progress: it was committed that way "
            "(by whoever pushed it), not left by your merge; refusing to resolve it",
            hint=f"restore it from history (git log -- {relpath}), or ask who pushed it; if your own merge "
            f"left it and you git added it already: git checkout -m -- {relpath}",
        )
    if not {2, 3} <= stages:
        raise SecretStoreError(
            f"{relpath} is marked unmerged but git's conflict on it lacks a side (deleted on one): "
            "the merge driver did not write it; refusing to resolve it",
            hint=f"keep one side (git checkout --ours -- {relpath}, --theirs, or git rm it), then git add it",
        )
    ours, theirs = _git_stage(store.root, relpath, 2), _git_stage(store.root, relpath, 3)
    if data == ours:
        raise SecretStoreError(
            f"{relpath} is your side of the merge as it was committed, marked unmerged: the merge driver "
            "refused to merge it and left it untouched, it did not write it; refusing to resolve it",
            hint=f"restore it from history (git log -- {relpath}), or ask who committed it",
        )
    sides = max(_counter_of(ours, relpath), _counter_of(theirs, relpath))
    if merged.counter <= sides:
        raise SecretStoreError(
            f"{relpath} (unmerged) is version {merged.counter}, not above both sides of the merge "
            f"(version {sides}): the merge driver signs above both, so it did not write it; refusing to resolve it",
            hint=f"to merge it again: git checkout -m -- {relpath}",
        )
    if merged.signer != identity.public_text:
        from secretstore.trust import short

        raise SecretStoreError(
            f"{relpath} (unmerged) is signed by {short(merged.signer) or 'nobody'}, not by you: the merge "
            "driver signs as you, so it did not write it; refusing to resolve it",
            hint=f"to merge it again: git checkout -m -- {relpath}",
        )
    return theirs


def _conflict_stages(root: str, relpath: str) -> set[int]:
    """The stages (1 base, 2 ours, 3 theirs) git's index holds for ``relpath`` in conflict: none
    when no merge (rebase, cherry-pick, ...) left it unmerged, or ``root`` is in no checkout."""
    try:
        done = subprocess.run(["git", "-C", root, "ls-files", "-u", "-z", "--", f":(literal){relpath}"],
                              capture_output=True, check=False)
    except FileNotFoundError:
        raise SecretStoreError("git is not installed (or not on PATH)") from None
    if done.returncode != 0:
        return set()
    stages = set()
    for record in done.stdout.split(b"\0"):
        info, _tab, path = record.partition(b"\t")
        fields = info.split()
        if path == relpath.encode() and len(fields) == 3 and fields[2] in (b"1", b"2", b"3"):
            stages.add(int(fields[2]))
    return stages


def _counter_of(data: bytes, where: str) -> int:
    """The counter of one side in git's index (behind an unmerged marker, if any); 0 if it does not parse."""
    if data.startswith(UNMERGED_MARKER):
        data = data.partition(b"\n")[2]
    try:
        return scopefile.parse(data, where).counter
    except SecretStoreError:
        return 0


def _base_readers(root: str, scope: Scope) -> set[bytes]:
    """The reading keys of the common ancestor in git's index (stage 1); none without one.

    Not verified: it only widens what counts as removed, so it can add marks, never drop one."""
    try:
        return set(_readers(scopefile.parse(_git_stage(root, scope.relpath, 1), f"{scope.relpath} (base)")))
    except SecretStoreError:
        return set()


def _git_stage(root: str, relpath: str, stage: int) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", root, "show", f":{stage}:./{relpath}"], capture_output=True, check=False
        )
    except FileNotFoundError:
        raise SecretStoreError("git is not installed (or not on PATH)") from None
    if done.returncode != 0:
        raise SecretStoreError(
            f"git has no {'ours' if stage == 2 else 'theirs'} version of {relpath} (was it already git added?)",
            hint=f"to start over: git checkout -m -- {relpath}",
        )
    return done.stdout


# --- setup -------------------------------------------------------------------------------


def driver_command() -> str:
    """How git should call this program back: the running console script, else python -m."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "secretstore" and os.path.isfile(script):
        program = shlex.quote(os.path.abspath(script))
    else:
        program = f"{shlex.quote(sys.executable)} -m secretstore"
    return f"{program} git merge-driver %O %A %B %P"


def _git(root: str, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", root, *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise SecretStoreError("git is not installed (or not on PATH)") from None
    if done.returncode != 0:
        raise SecretStoreError(
            f"git {' '.join(args)} failed in {root}: {done.stderr.strip() or done.returncode}"
        )
    return done.stdout.strip()


def setup(root: str, *, default_store: bool = False) -> tuple[bool, str]:
    """Write ``.gitattributes`` in the store and the repository's merge-driver config.

    Returns (whether .gitattributes changed, the driver command). Idempotent.
    ``default_store``: ``root`` is the user data dir (no --store, $SECRETSTORE_DIR or
    .secretstore.toml chose it), never a checkout to make: the hint says how to choose one.
    """
    # In a fresh checkout the store directory may not exist yet: ask git about the
    # nearest directory that does, and create the store only inside a checkout.
    probe = os.path.abspath(root)
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        inside = _git(probe, "rev-parse", "--is-inside-work-tree")
    except SecretStoreError as exc:
        if "git is not installed" in exc.message:
            raise
        inside = "false"
    if inside != "true":
        if default_store:
            raise SecretStoreError(
                f"{root} (your user data dir, the default store) is not inside a git checkout",
                hint="to share a store through git, choose one inside the checkout: add store = \"DIR\" to the "
                "checkout's .secretstore.toml, or pass --store DIR (docs/sharing.md)",
            )
        raise SecretStoreError(
            f"{root} is not inside a git checkout", hint=f"run: git -C {shlex.quote(probe)} init"
        )
    fsio.ensure_dir(root)
    path = os.path.join(root, ".gitattributes")
    existing = (fsio.read_file(path) or b"").decode("utf-8", "replace")
    # A rule written before -text was added is brought up to date where it stands.
    lines = [_UPDATED_RULES.get(line, line) for line in existing.splitlines()]
    updated = "".join(line + "\n" for line in lines) if lines != existing.splitlines() else existing
    missing = [line for line in ATTRIBUTES if line not in lines]
    if missing or updated != existing:
        prefix = updated if not updated or updated.endswith("\n") else updated + "\n"
        fsio.atomic_write(path, (prefix + "".join(line + "\n" for line in missing)).encode("utf-8"), mode=0o644)
    command = driver_command()
    _git(root, "config", f"merge.{DRIVER_NAME}.name", "secretstore scope files, entry by entry")
    _git(root, "config", f"merge.{DRIVER_NAME}.driver", command)
    return bool(missing) or updated != existing, command

