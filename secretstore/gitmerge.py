"""A team store in git: ``secretstore git setup`` and the scope-file merge driver.

Every scope file ends in one MAC line, so two people changing one file always
conflict for git's line merge. The driver merges a scope file entry by entry
instead:

- all three sides (base, ours, theirs) are parsed and verified with the
  caller's identity (MAC checked, data key opened); a file whose MAC fails,
  e.g. after a bad hand merge, is reported and never used. A base the caller
  is not a recipient of (they were added after it) is used only to tell which
  side changed an entry, by comparing stored bytes; values always come from
  the verified sides;
- each name is merged three-way on its decrypted content: a change on one
  side wins, the same change on both sides is taken once, and different
  changes to one name are a conflict that is reported (never a silent pick);
- recipients are merged three-way by public key;
- the result is MAC'd afresh. If both sides still share the data key, their
  ciphertexts and sealed keys are kept byte for byte; if one side rotated
  (a removal or ``rotate``), the result gets a fresh data key, sealed to the
  merged recipients, and every value is re-encrypted.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

from secretstore import crypto, fsio, scopefile
from secretstore.errors import NotRecipientError, SecretStoreError
from secretstore.identity import Identity, Recipient
from secretstore.scopefile import Entry, ScopeFile, SealedKey, Version
from secretstore.store import Scope, unlock_file

DRIVER_NAME = "secretstore"
ATTRIBUTE_RULES = (
    "team.toml merge=secretstore",
    "projects/*.toml merge=secretstore",
    "clusters/*.toml merge=secretstore",
)
ATTRIBUTES = (
    "# secretstore: merge scope files entry by entry (run 'secretstore git setup' in each clone)",
    *ATTRIBUTE_RULES,
)


class MergeConflictError(SecretStoreError):
    """Both sides changed the same secret (or the same file in incompatible ways)."""


# (current value or None when deleted, updated, history as (updated, value) pairs)
_State = tuple[str | None, str, tuple[tuple[str, str], ...]]


@dataclass
class _Side:
    scope: Scope
    file: ScopeFile
    keys: crypto.FileKeys | None  # None only for a base the caller cannot open
    states: dict[str, _State]

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


def _open_side(data: bytes, label: str, path: str, identity: Identity) -> _Side:
    where = f"{path} ({label})"
    file = scopefile.parse(data, where)
    scope = Scope(file.entity, file.scope_id)
    try:
        unlocked = unlock_file(scope, file, identity, where)
    except NotRecipientError as exc:
        if label == "base":
            return _Side(scope, file, None, {})
        raise NotRecipientError(f"{where}: {exc.message}") from None
    keys = unlocked.keys

    def plain(name: str, version: Version) -> str:
        return scopefile.decrypt(file, keys, name, version, where)

    states: dict[str, _State] = {}
    for name, entry in file.entries.items():
        current = None if entry.current is None else plain(name, entry.current)
        history = tuple((v.updated, plain(name, v)) for v in entry.history)
        states[name] = (current, entry.updated, history)
    return _Side(scope, file, keys, states)


def _merge_recipients(base: _Side | None, ours: _Side, theirs: _Side) -> list[Recipient]:
    base_keys = {s.public_key for s in base.file.recipients} if base else set()
    our_keys = {s.public_key for s in ours.file.recipients}
    their_keys = {s.public_key for s in theirs.file.recipients}
    merged: list[Recipient] = []
    for stanza in [*ours.file.recipients, *theirs.file.recipients]:
        key = stanza.public_key
        if any(r.text == key for r in merged):
            continue
        in_both = key in our_keys and key in their_keys
        if in_both or key not in base_keys:  # kept by both, or added by one side
            merged.append(Recipient.parse(key, stanza.label))
    return merged


def merge_scope_files(
    base: bytes | None, ours: bytes, theirs: bytes, identity: Identity, path: str = "scope file"
) -> bytes:
    """The three-way merge of a scope file, freshly MAC'd; MergeConflictError on a real conflict."""
    our_side = _open_side(ours, "ours", path, identity)
    their_side = _open_side(theirs, "theirs", path, identity)
    base_side = _open_side(base, "base", path, identity) if base else None
    scope = our_side.scope
    if their_side.scope != scope or (base_side and base_side.scope != scope):
        raise MergeConflictError(f"{path}: the sides hold different scopes; merge it by hand")

    chosen: dict[str, tuple[_Side, _State]] = {}
    conflicts = []
    for name in sorted(set(our_side.file.entries) | set(their_side.file.entries)
                       | set(base_side.file.entries if base_side else ())):
        o, t = our_side.states.get(name), their_side.states.get(name)
        if o == t or not their_side.changed(name, base_side):
            pick: tuple[_Side, _State | None] = (our_side, o)
        elif not our_side.changed(name, base_side):
            pick = (their_side, t)
        elif o is not None and t is not None and o[0] == t[0] and o[2] == t[2]:
            pick = (our_side, o) if o[1] >= t[1] else (their_side, t)  # same value, later stamp
        else:
            conflicts.append(name)
            continue
        side, state = pick
        if state is not None:
            chosen[name] = (side, state)
    if conflicts:
        raise MergeConflictError(
            f"{path}: both sides changed {', '.join(conflicts)}; nothing was merged",
            hint=(
                "keep one side (git checkout --ours or --theirs -- FILE), commit, "
                "then set the other value again with 'secretstore set'"
            ),
        )

    recipients = _merge_recipients(base_side, our_side, their_side)
    our_keys, their_keys = our_side.keys, their_side.keys
    assert our_keys is not None and their_keys is not None  # both were opened
    same_key = our_keys.data_key == their_keys.data_key
    keys = our_keys if same_key else crypto.FileKeys(crypto.new_data_key())
    merged = ScopeFile(scope.entity, scope.scope_id, [])
    if same_key:
        stanzas = {s.public_key: s for s in [*their_side.file.recipients, *our_side.file.recipients]}
        merged.recipients = [stanzas[r.text] for r in recipients]
        merged.entries = {name: side.file.entries[name] for name, (side, _s) in chosen.items()}
    else:
        merged.recipients = [SealedKey(r.text, r.seal(keys.data_key), r.label) for r in recipients]
        for name, (_side, (current, updated, history)) in chosen.items():
            merged.entries[name] = Entry(
                None if current is None else scopefile.encrypt(merged, keys, name, current, updated),
                updated,
                tuple(scopefile.encrypt(merged, keys, name, value, when) for when, value in history),
            )
    return scopefile.seal(merged, keys)


def run_merge_driver(base: str, ours: str, theirs: str, path: str, identity: Identity) -> None:
    """The git merge driver: merge into ``ours`` (git's %A) or raise, leaving it as it was."""
    base_bytes = fsio.read_file(base) or b""
    our_bytes = fsio.read_file(ours)
    their_bytes = fsio.read_file(theirs)
    if our_bytes is None or their_bytes is None:
        raise SecretStoreError(f"{path}: git gave the merge driver a missing file")
    if not base_bytes.strip():  # added on both sides: no common ancestor
        base_bytes = b""
    result = merge_scope_files(base_bytes or None, our_bytes, their_bytes, identity, path)
    fsio.atomic_write(ours, result)


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


def setup(root: str) -> tuple[bool, str]:
    """Write ``.gitattributes`` in the store and the repository's merge-driver config.

    Returns (whether .gitattributes changed, the driver command). Idempotent.
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
        raise SecretStoreError(
            f"{root} is not inside a git checkout", hint=f"run: git -C {shlex.quote(probe)} init"
        )
    fsio.ensure_dir(root)
    path = os.path.join(root, ".gitattributes")
    existing = (fsio.read_file(path) or b"").decode("utf-8", "replace")
    lines = existing.splitlines()
    missing = [line for line in ATTRIBUTES if line not in lines]
    if missing:
        prefix = existing if not existing or existing.endswith("\n") else existing + "\n"
        fsio.atomic_write(path, (prefix + "\n".join(missing) + "\n").encode("utf-8"), mode=0o644)
    command = driver_command()
    _git(root, "config", f"merge.{DRIVER_NAME}.name", "secretstore scope files, entry by entry")
    _git(root, "config", f"merge.{DRIVER_NAME}.driver", command)
    return bool(missing), command
