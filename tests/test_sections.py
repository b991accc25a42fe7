"""Version-4 scope files: a one-name write appends a sealed section instead of writing the file
again (FORMAT.md, "Scope file, version 4").

These tests hold the appended file to the spec (an independent check of its layout, digests,
seal and MAC, ``check_v4``), to the full writer (the same logical state whichever path writes
it), and to the reader's rules: tampering of any kind is refused, a file cut back to an earlier
seal is a rollback for a reader that read the later one, a section a crash cut short is
ignored until the next writer cuts it off, and exec's snapshot and list's cache follow the
appends. Fake secret values only.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl import bindings

from secretstore import fsio, scopefile
from secretstore import store as store_module
from secretstore.errors import RollbackError, SecretStoreError, StoreFormatError, TamperedError
from secretstore.identity import Identity
from secretstore.store import DEFAULT_HISTORY, TEAM, Scope, Store
from tests.reference_reader import blake2b, frame, parse_public_key, signature_valid
from tests.sharing_helpers import team_of

Run = Callable[..., subprocess.CompletedProcess[bytes]]
PROJECT = Scope("project", "prj1")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

# --- an independent reading of FORMAT.md, "Scope file, version 4" ----------------------------

_SEAL = re.compile(
    rb'\n\[\[seals\]\]\nbase = ([1-9][0-9]*)\ncounter = ([1-9][0-9]*)\nsigner = "([^"\n]+)"\n'
    rb'signature = "([A-Za-z0-9+/=]+)"\nmac = "([A-Za-z0-9+/=]+)"\n'
)
_UPDATE = re.compile(rb"\n\[\[secrets\.([A-Za-z][A-Za-z0-9_]*)\.update\]\]\n")
_POINTER = re.compile(rb'\nhistory_bytes = ([1-9][0-9]*)\nhistory_digest = "([A-Za-z0-9+/=]+)"\n')
_STANZA = re.compile(rb'\n\[\[recipients\]\]\npublic_key = "([^"\n]+)"\n(?:label = "[^\n]*"\n)?'
                     rb'sealed_key = "([A-Za-z0-9+/=]+)"\n')


def seals_of(data: bytes) -> list[re.Match[bytes]]:
    return list(_SEAL.finditer(data))


def check_v4(data: bytes, me: Identity) -> tuple[int, str, int]:
    """(counter, signer, number of seals) of a version-4 file whose every byte is as FORMAT.md
    lays it out, whose chunks match their pointers and whose last seal's signature and MAC
    (under ``me``'s data key) verify over the chained digest; AssertionError otherwise.
    Written from FORMAT.md with hashlib and libsodium, not with secretstore's reader."""
    head = re.match(rb'format = "secretstore/v4"\nentity = "(team|project|cluster)"\n(?:id = "[^"\n]+"\n)?'
                    rb'store = "[A-Za-z0-9_-]{22}"\n', data)
    assert head is not None, data[:200]
    body_end = data.index(b"\n[[s")
    body = data[:body_end]
    assert b"[[secrets." not in body and b"[[seals]]" not in body
    at = body_end
    for pointer in _POINTER.finditer(body):  # item 3: each body entry's chunk, in entry order
        chunk = data[at : at + int(pointer[1])]
        assert blake2b(chunk, person=b"sstore-history-3") == base64.b64decode(pointer[2], validate=True)
        assert chunk.startswith(b"\n[[secrets.") and b".history]]\n" in chunk
        at += len(chunk)
    base = at
    digest = blake2b(body, person=b"sstore-filebody4")
    found = seals_of(data)
    assert found and found[-1].end() == len(data), "the file ends with a whole seal"
    start, signed_from, counter = base, base, 0
    for seal in found:
        assert seal.start() >= start and int(seal[1]) == base
        assert int(seal[2]) > counter
        counter = int(seal[2])
        updates = list(_UPDATE.finditer(data, start, seal.start()))
        assert len({u[1] for u in updates}) == len(updates), "a name at most once in a section"
        # signed: from the seal before's signature line (the first section: from base) to the end
        # of this seal's signer line, less the updates' chunks (bound by their digests instead);
        # so every byte but the last seal's signature and mac is signed or bound
        signed_end = data.index(b"\nsignature = ", seal.start()) + 1
        signed, pos = [], start
        for update in updates:
            end = data.index(b"\n\n", update.start() + 1) + 1  # a chunk or a seal starts with a blank line
            block = data[update.start() : end]
            chunk = data[pos : update.start()]
            pointer = _POINTER.search(block)
            if pointer is None:
                assert chunk == b"" and b"deleted = true" not in block
            else:
                assert len(chunk) == int(pointer[1]) and pointer.end() == len(block)
                assert blake2b(chunk, person=b"sstore-history-3") == base64.b64decode(pointer[2], validate=True)
            signed.append(data[signed_from:pos])
            signed_from, pos = update.start(), end
        assert pos == seal.start(), "nothing but updates before a seal"
        signed.append(data[signed_from:signed_end])
        previous = digest
        digest = blake2b(len(previous).to_bytes(4, "big") + previous + b"".join(signed), person=b"sstore-section-4")
        start, signed_from = seal.end(), signed_end
    last = found[-1]
    signer = last[3].decode()
    mac, signature = base64.b64decode(last[5], validate=True), base64.b64decode(last[4], validate=True)
    stanzas = {parse_public_key(m[1].decode()).box: base64.b64decode(m[2]) for m in _STANZA.finditer(body)}
    data_key = bindings.crypto_box_seal_open(stanzas[me.box_key], me.box_key, me._secret_key)
    mac_key = blake2b(b"", key=data_key, person=b"sstore-mackey-v1")
    assert blake2b(frame("secretstore file", "secretstore/v4", digest), key=mac_key) == mac
    sign_public = parse_public_key(signer).sign
    assert sign_public is not None
    assert signature_valid(signature, frame("secretstore signature", "secretstore/v4", digest, mac), sign_public)
    return counter, signer, len(found)


# --- helpers ----------------------------------------------------------------------------------


def raw(store: Store, scope: Scope = TEAM) -> bytes:
    return Path(store.path(scope)).read_bytes()


def put_raw(store: Store, data: bytes, scope: Scope = TEAM) -> None:
    Path(store.path(scope)).write_bytes(data)


def state_of(store: Store, me: Identity, scope: Scope = TEAM) -> dict[str, tuple[object, ...]]:
    """Everything a reader can tell of each name: its value (None: deleted), time, writer, rotate
    flag, and each earlier version's value, time and writer, oldest first."""
    unlocked = store.unlock(scope, me)
    assert unlocked is not None
    file, keys = unlocked.file, unlocked.keys
    found: dict[str, tuple[object, ...]] = {}
    for name, entry in file.entries.items():
        current = None if entry.current is None else scopefile.decrypt(file, keys, name, entry.current, "t")
        history = tuple((scopefile.decrypt(file, keys, name, v, "t"), v.updated, v.writer) for v in entry.history)
        found[name] = (current, entry.updated, entry.writer, entry.rotate, history)
    return found


class Paths:
    """Counts what ``Store._splice`` (the append, for a version-4 file) took and left to the full path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.appended = self.whole = 0
        real = Store._splice

        def spied(store: Store, *args: object) -> str | None:
            done = real(store, *args)  # type: ignore[arg-type]
            if done is None:
                self.whole += 1
            else:
                self.appended += 1
            return done

        monkeypatch.setattr(Store, "_splice", spied)


class FullStore(Store):
    """A store that never appends nor splices: every write is the full writer's."""

    def _splice(self, *args: object, **kwargs: object) -> str | None:
        return None


def flip(data: bytes, at: int) -> bytes:
    """``data`` with the base64 (or base64url) character at ``at`` changed to another one."""
    old = data[at : at + 1]
    assert old.isalnum() or old in b"+/-_", old
    return data[:at] + (b"A" if old != b"A" else b"B") + data[at + 1 :]


def one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    """The refusal of a console-script run: exit 1, nothing on stdout, one error line, no traceback."""
    err = done.stderr.decode()
    assert done.returncode == 1, (done.returncode, err)
    assert done.stdout == b"", done.stdout
    assert "Traceback" not in err and "fake-" not in err  # no value, not even in the error
    lines = [line for line in err.splitlines() if line.startswith("secretstore: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def me(identity: Identity) -> Identity:
    return identity


# --- 1. a one-name write appends a section ----------------------------------------------------


def test_a_one_name_set_appends_one_section_and_leaves_every_byte_before_it(store: Store, me: Identity) -> None:
    store.set_many(TEAM, {"ALPHA": "fake-alpha-1", "BRAVO": "fake-bravo-1"}, me)
    path = store.path(TEAM)
    before, inode = raw(store), os.stat(path).st_ino
    assert check_v4(before, me)[2] == 1
    assert store.set(TEAM, "ALPHA", "fake-alpha-2", me) is False
    after = raw(store)
    assert after.startswith(before) and len(after) > len(before)  # appended: the old bytes untouched
    assert os.stat(path).st_ino == inode  # the same file, not a new one renamed over it
    section = after[len(before) :]
    assert len(seals_of(section)) == 1 and section.endswith(seals_of(after)[-1][0])
    assert b"[[secrets.ALPHA.update]]" in section and b"BRAVO" not in section
    assert b"[[secrets.ALPHA.history]]" in section  # the old value joins its history, in the section
    counter, signer, count = check_v4(after, me)
    assert (counter, signer, count) == (2, me.public_text, 2)
    assert store.read(TEAM, me) == {"ALPHA": "fake-alpha-2", "BRAVO": "fake-bravo-1"}
    assert [v.state for v in store.versions(TEAM, "ALPHA", me.public)] == ["current", "previous"]
    assert store.get_version(TEAM, "ALPHA", 1, me) == "fake-alpha-1"
    assert store.list(TEAM, me.public) == [("ALPHA", state_of(store, me)["ALPHA"][1]),
                                           ("BRAVO", state_of(store, me)["BRAVO"][1])]
    # a new name, only ever in sections
    before = raw(store)
    assert store.set(TEAM, "CHARLIE", "fake-charlie-1", me) is True
    after = raw(store)
    assert after.startswith(before) and os.stat(path).st_ino == inode
    assert b"[secrets.CHARLIE]" not in after and b"[[secrets.CHARLIE.update]]" in after
    counter, _signer, count = check_v4(after, me)
    assert (counter, count) == (3, 3)
    assert [name for name, _ in store.list(TEAM, me.public)] == ["ALPHA", "BRAVO", "CHARLIE"]
    # a reader of current values reads the body and the sections, never the history between them
    store.set_many(TEAM, {"ALPHA": "fake-alpha-3", "BRAVO": "fake-bravo-2"}, me)  # whole: history after the body
    store.set(TEAM, "BRAVO", "fake-bravo-3", me)
    data = raw(store)
    body_end, base = data.index(b"\n[[s"), int(seals_of(data)[0][1])
    assert b"[[secrets.ALPHA.history]]" in data[body_end:base]
    assert store.read_current(TEAM) == data[:body_end] + data[base:]
    # a value it already holds: nothing written
    assert store.set(TEAM, "BRAVO", "fake-bravo-3", me) is False
    assert raw(store) == data


def test_history_rollback_and_undelete_across_sections(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every one-name write appends (none writes the file whole), and every earlier version
    stays reachable through the chunks of the sections, for a name of the body and for a
    name that exists only in sections."""
    store.set_many(TEAM, {"BODY": "fake-body-1", "OTHER": "fake-other-1"}, me)
    paths = Paths(monkeypatch)
    inode = os.stat(store.path(TEAM)).st_ino
    steps: list[Callable[[], object]] = [
        lambda: store.set(TEAM, "BODY", "fake-body-2", me),
        lambda: store.set(TEAM, "NEW", "fake-new-1", me),
        lambda: store.set(TEAM, "BODY", "fake-body-3", me),
        lambda: store.set(TEAM, "NEW", "fake-new-2", me),
        lambda: store.delete(TEAM, "NEW", me),
        lambda: store.undelete(TEAM, "NEW", me),
        lambda: store.rollback(TEAM, "BODY", 2, me),  # fake-body-1 again
        lambda: store.delete(TEAM, "OTHER", me),
        lambda: store.set(TEAM, "NEW", "fake-new-3", me),
        lambda: store.rollback(TEAM, "NEW", 2, me),
    ]
    for number, step in enumerate(steps):
        before = raw(store)
        step()
        after = raw(store)
        assert after.startswith(before) and after != before, number
        assert check_v4(after, me)[2] == number + 2
    assert (paths.appended, paths.whole) == (len(steps), 0)
    assert os.stat(store.path(TEAM)).st_ino == inode
    # NEW: 1, 2, deleted (history 1, 2), undeleted (2), 3; its versions newest first are then
    # 3, 2, 2, 1, and "--to 2" brings back the 2 that was deleted
    assert store.read(TEAM, me) == {"BODY": "fake-body-1", "NEW": "fake-new-2"}
    state = state_of(store, me)
    assert [v[0] for v in state["NEW"][4]] == ["fake-new-1", "fake-new-2", "fake-new-2", "fake-new-3"]
    assert [v[0] for v in state["BODY"][4]] == ["fake-body-1", "fake-body-2", "fake-body-3"]
    assert state["OTHER"][0] is None and [v[0] for v in state["OTHER"][4]] == ["fake-other-1"]
    assert [v.state for v in store.versions(TEAM, "OTHER", me.public)] == ["deleted", "previous"]
    assert store.get_version(TEAM, "NEW", 4, me) == "fake-new-1"
    store.undelete(TEAM, "OTHER", me)
    assert store.read(TEAM, me)["OTHER"] == "fake-other-1"
    assert (paths.appended, paths.whole) == (len(steps) + 1, 0)


def test_history_get_version_rollback_undelete_through_the_console_script(
    cli_run: Run, isolated_env: dict[str, str], me: Identity
) -> None:
    path = Path(isolated_env["store"]) / "team.toml"
    for args in (["--name=A", "--value=fake-a1"], ["--name=A", "--value=fake-a2"], ["--name=S", "--value=fake-s1"],
                 ["--name=S", "--value=fake-s2"], ["--name=A", "--value=fake-a3"]):
        done = cli_run("set", "team", *args)
        assert done.returncode == 0, done.stderr
    data = path.read_bytes()
    assert check_v4(data, me)[2] == 5 and b"[secrets.S]" not in data  # S: only in sections
    assert cli_run("get", "team", "--name=A", "--version=2").stdout == b"fake-a1"
    assert cli_run("get", "team", "--name=S", "--version=1").stdout == b"fake-s1"
    history = cli_run("history", "team", "--name=S")
    assert history.returncode == 0 and history.stdout.count(b"previous") == 1 and b"fake-" not in history.stdout
    for args in (["rollback", "team", "--name=A", "--to=2"], ["delete", "team", "--name=S"],
                 ["undelete", "team", "--name=S"], ["rollback", "team", "--name=S", "--to=2"]):
        before = path.read_bytes()
        done = cli_run(*args)
        assert done.returncode == 0, (args, done.stderr)
        after = path.read_bytes()
        assert after.startswith(before) and len(seals_of(after)) == len(seals_of(before)) + 1, args
    check_v4(path.read_bytes(), me)
    assert cli_run("get", "team", "--name=A").stdout == b"fake-a1"
    assert cli_run("get", "team", "--name=S").stdout == b"fake-s1"  # S: 1, 2, deleted, 2, then "--to 2": 1
    assert cli_run("get", "team", "--name=S", "--version=1").stdout == b"fake-s2"


# --- 2. appending and writing whole give the same file, logically ------------------------------

NAMES = ("A", "B", "C")
Model = dict[str, list]  # name -> [current (value, updated, writer) or None, rotate, [earlier versions]]


def _clock(step: int) -> str:
    return f"2026-01-01T{step // 3600:02d}:{step // 60 % 60:02d}:{step % 60:02d}Z"


def _expected(model: Model) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    for name, (current, rotate, history, (updated, writer)) in sorted(model.items()):
        found[name] = (None if current is None else current[0], updated, writer, rotate,
                       tuple(history[-DEFAULT_HISTORY:]))
    return found


def _private_store(root: Path) -> None:
    root.mkdir(mode=0o700)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["set", "set", "set", "delete", "rollback", "undelete", "purge"]),
                              st.sampled_from(NAMES), st.integers(0, 3), st.booleans()),
                    min_size=1, max_size=12))
def test_appending_gives_the_state_writing_whole_gives(
    ops: list[tuple[str, str, int, bool]], tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same writes, by two writers, on a store that appends and on one that writes every
    file whole: after each, both give the same values, versions (time and writer of each),
    deleted and rotate flags, as a model of the rules says; every file written passes
    ``check_v4``; the appending store's file grows by one sealed section each time, but for a
    purge (and a first entry after the last was purged), which write it whole."""
    root = tmp_path_factory.mktemp("same")
    me, other = Identity.generate("me"), Identity.generate("other")
    appending, whole = Store(str(root / "appending")), FullStore(str(root / "whole"))
    step = [0]
    with monkeypatch.context() as patched:
        patched.setattr(store_module, "now", lambda: _clock(step[0]))
        setup = FullStore(appending.root)  # one seal to start from: A with an earlier version, B without
        setup.set_many(TEAM, {"A": "fake-A-0", "B": "fake-B-0"}, me)
        setup.set(TEAM, "A", "fake-A-1", me)
        unlocked = setup.unlock(TEAM, me)
        assert unlocked is not None
        for name in ("A", "B"):  # as recipients remove marks them
            unlocked.file.entries[name] = unlocked.file.entries[name].replace(rotate=True)
        assert unlocked.add_recipient(other.public)
        setup._write(unlocked, me)
        _private_store(root / "whole")
        put_raw(whole, raw(appending))
        os.chmod(whole.path(TEAM), 0o600)
        for store in (appending, whole):
            store.trust(me.public).trust_key(other.public)
            store.trust(other.public).trust_key(me.public)
        stamp = (_clock(0), me.public_text)
        model: Model = {"A": [("fake-A-1", *stamp), True, [("fake-A-0", *stamp)], stamp],
                        "B": [("fake-B-0", *stamp), True, [], stamp]}
        assert state_of(appending, me) == _expected(model)
        for op, name, n, by_other in ops:
            step[0] += 1
            writer = other if by_other else me
            entry = model.get(name)
            current = None if entry is None else entry[0]
            history = [] if entry is None else entry[2]
            stamp = (_clock(step[0]), writer.public_text)
            if op == "set":
                value = f"fake-{name}-{n}"
                if current is not None and current[0] == value:
                    continue  # unchanged: nothing written (checked in the other tests)
                if current is not None:
                    history.append(current)
                model[name] = [(value, *stamp), False, history[-DEFAULT_HISTORY:], stamp]
                run: Callable[[Store], object] = lambda s: s.set(TEAM, name, value, writer)  # noqa: B023, E731
            elif op == "delete":
                if entry is None or current is None:
                    continue
                history.append(current)
                model[name] = [None, entry[1], history[-DEFAULT_HISTORY:], stamp]
                run = lambda s: s.delete(TEAM, name, writer)  # noqa: B023, E731
            elif op == "rollback":
                if entry is None or current is None or not history:
                    continue
                number = 1 + n % len(history)
                value = history[-number][0]
                history.append(current)
                model[name] = [(value, *stamp), entry[1], history[-DEFAULT_HISTORY:], stamp]
                run = lambda s: s.rollback(TEAM, name, number, writer)  # noqa: B023, E731
            elif op == "purge":
                if entry is None:
                    continue
                del model[name]
                run = lambda s: s.delete(TEAM, name, writer, purge=True)  # noqa: B023, E731
            else:
                if entry is None or current is not None or not history:
                    continue
                model[name] = [(history[-1][0], *stamp), entry[1], history, stamp]
                run = lambda s: s.undelete(TEAM, name, writer)  # noqa: B023, E731
            before = raw(appending)
            run(appending)
            run(whole)
            after = raw(appending)
            if op == "purge" or b"\n[secrets]\n" in before:  # a name leaves, or the first entry: whole
                assert len(seals_of(after)) == 1, op
            else:
                assert after.startswith(before) and len(seals_of(after)) == len(seals_of(before)) + 1, op
            assert check_v4(after, me)[1] == writer.public_text
            assert check_v4(raw(whole), me)[1:] == (writer.public_text, 1)
            expected = _expected(model)
            assert state_of(appending, me) == expected == state_of(whole, me)
            assert appending.listing(TEAM, me.public) == whole.listing(TEAM, me.public)


# --- 3. compaction, and purge ------------------------------------------------------------------


def test_after_compact_sections_sections_the_next_write_writes_the_file_whole(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scopefile, "COMPACT_SECTIONS", 3)
    paths = Paths(monkeypatch)
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)  # whole: section 1
    store.set(TEAM, "A", "fake-a1", me)  # 2
    store.set(TEAM, "C", "fake-c0", me)  # 3
    assert (paths.appended, paths.whole) == (2, 0) and len(seals_of(raw(store))) == 3
    inode = os.stat(store.path(TEAM)).st_ino
    before = state_of(store, me)
    store.delete(TEAM, "A", me)  # a fourth section would be one too many: written whole
    assert (paths.appended, paths.whole) == (2, 1)
    data = raw(store)
    assert check_v4(data, me)[2] == 1 and data.count(b"[[seals]]") == 1
    assert b".update]]" not in data  # every section folded into the body and its history
    assert os.stat(store.path(TEAM)).st_ino != inode  # a new file renamed over the old one
    after = state_of(store, me)
    assert after["B"] == before["B"] and after["C"] == before["C"]
    assert after["A"][0] is None and after["A"][4] == (*before["A"][4], (before["A"][0], *before["A"][1:3]))
    assert [v[0] for v in after["A"][4]] == ["fake-a0", "fake-a1"]
    store.undelete(TEAM, "A", me)  # and the next one appends again
    assert (paths.appended, paths.whole) == (3, 1) and len(seals_of(raw(store))) == 2
    assert store.read(TEAM, me) == {"A": "fake-a1", "B": "fake-b0", "C": "fake-c0"}


def test_more_than_compact_bytes_after_the_history_writes_the_file_whole(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = Paths(monkeypatch)
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set_many(TEAM, {"A": "fake-a1", "B": "fake-b1"}, me)  # whole, with history after the body
    store.set(TEAM, "A", "fake-a2", me)
    data = raw(store)
    base = int(seals_of(data)[0][1])
    assert data[base:].startswith(b"\n[[seals]]") and b"[[secrets.A.history]]" in data[:base]
    monkeypatch.setattr(scopefile, "COMPACT_BYTES", len(data) - base)  # exactly at the limit: not more
    store.set(TEAM, "B", "fake-b2", me)
    assert (paths.appended, paths.whole) == (2, 0) and len(seals_of(raw(store))) == 3
    before = state_of(store, me)
    store.set(TEAM, "B", "fake-b3", me)  # now more than the limit after the history
    assert (paths.appended, paths.whole) == (2, 1)
    data = raw(store)
    assert check_v4(data, me)[2] == 1
    after = state_of(store, me)
    assert after["A"] == before["A"]
    assert [v[0] for v in after["B"][4]] == ["fake-b0", "fake-b1", "fake-b2"] and after["B"][0] == "fake-b3"


def _value_texts(data: bytes, name: str) -> set[bytes]:
    """The base64 nonce and ciphertext of every version of ``name`` in the file: its entry,
    its updates and its history blocks."""
    found: set[bytes] = set()
    for block in re.split(rb"\n(?=\[)", data):
        header = block.split(b"\n", 1)[0]
        if header in (f"[secrets.{name}]".encode(), f"[[secrets.{name}.update]]".encode(),
                      f"[[secrets.{name}.history]]".encode()):
            found.update(re.findall(rb'(?:nonce|ciphertext) = "([^"]+)"', block))
    return found


@pytest.mark.parametrize("name", ["BODY", "ONLY_SECTIONS"])
def test_delete_purge_writes_whole_and_leaves_no_byte_of_the_value(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    store.set_many(TEAM, {"BODY": "fake-body-0", "KEEP": "fake-keep-0"}, me)
    for n in range(1, 4):
        store.set(TEAM, name, f"fake-{name.lower()}-{n}", me)
        store.set(TEAM, "KEEP", f"fake-keep-{n}", me)
    store.delete(TEAM, name, me)
    data = raw(store)
    texts = _value_texts(data, name)
    assert len(texts) >= 6 and all(text in data for text in texts)
    kept = {other: state for other, state in state_of(store, me).items() if other != name}
    paths = Paths(monkeypatch)
    store.delete(TEAM, name, me, purge=True)
    assert (paths.appended, paths.whole) == (0, 1)
    data = raw(store)
    assert check_v4(data, me)[2] == 1
    for text in texts:
        assert text not in data
        assert base64.b64decode(text) not in data
    assert name.encode() not in data
    assert state_of(store, me) == kept


def test_delete_purge_through_the_console_script_writes_whole(cli_run: Run, isolated_env: dict[str, str],
                                                              me: Identity) -> None:
    path = Path(isolated_env["store"]) / "team.toml"
    for value in ("fake-leak-1", "fake-leak-2"):
        assert cli_run("set", "team", "--name=LEAKED", f"--value={value}").returncode == 0
    assert cli_run("set", "team", "--name=KEPT", "--value=fake-kept").returncode == 0
    texts = _value_texts(path.read_bytes(), "LEAKED")
    assert len(texts) == 4
    done = cli_run("delete", "team", "--name=LEAKED", "--purge")
    assert done.returncode == 0, done.stderr
    data = path.read_bytes()
    assert check_v4(data, me)[2] == 1 and not any(text in data for text in texts)
    assert cli_run("get", "team", "--name=KEPT").stdout == b"fake-kept"


# --- 4. tampering ------------------------------------------------------------------------------


def sections_of(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each section: from the end of the one before it (or ``base``) to the end of its seal."""
    found = seals_of(data)
    starts = [int(found[0][1]), *(seal.end() for seal in found[:-1])]
    return [(start, seal.end()) for start, seal in zip(starts, found, strict=True)]


def _field(data: bytes, key: bytes, after: int) -> int:
    """Where the value of the first ``key = ...`` line at or after ``after`` starts (past any quote)."""
    at = data.index(b"\n" + key + b" = ", after) + len(key) + 4
    return at + (data[at : at + 1] == b'"')


@pytest.fixture
def sealed(store: Store, me: Identity) -> dict[str, bytes]:
    """team.toml with history after its body, and four sections after that: A changed (with a
    chunk), C added (no chunk), C changed (a chunk), A changed; and a project file and a
    sibling of team.toml (the same first four sections, then two others: B changed twice) to
    copy sections from."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set_many(TEAM, {"A": "fake-a1", "B": "fake-b1"}, me)
    store.set(TEAM, "A", "fake-a2", me)
    store.set(TEAM, "C", "fake-c0", me)
    store.set(TEAM, "C", "fake-c1", me)
    shared = raw(store)
    store.set(TEAM, "B", "fake-b-sibling", me)
    store.set(TEAM, "B", "fake-b-sibling-2", me)  # a counter above the one team.toml's last seal gets
    sibling = raw(store)
    put_raw(store, shared)
    store.state().update(lambda fresh: fresh.counters.pop("team.toml", None))  # as on another branch
    store.set(TEAM, "A", "fake-a3", me)
    store.set_many(PROJECT, {"A": "fake-pa0", "B": "fake-pb0"}, me)
    store.set(PROJECT, "A", "fake-pa1", me)
    data = raw(store)
    assert len(sections_of(data)) == 5 and check_v4(data, me)
    return {"team": data, "sibling": sibling, "project": raw(store, PROJECT)}


def _swap(data: bytes, first: int, second: int) -> bytes:
    spans = sections_of(data)
    (a0, a1), (b0, b1) = spans[first], spans[second]
    assert a1 == b0
    return data[:a0] + data[b0:b1] + data[a0:a1] + data[b1:]


def _drop(data: bytes, number: int) -> bytes:
    start, end = sections_of(data)[number]
    return data[:start] + data[end:]


def _signature_of(data: bytes, number: int, donor: int) -> bytes:
    found = seals_of(data)
    return data[: found[number].start(4)] + found[donor][4] + data[found[number].end(4) :]


def _other_signer(data: bytes, number: int) -> bytes:
    seal = seals_of(data)[number]
    return data[: seal.start(3)] + Identity.generate("other").public_text.encode() + data[seal.end(3) :]


def _base_plus_one(data: bytes, number: int) -> bytes:
    seal = seals_of(data)[number]
    return data[: seal.start(1)] + str(int(seal[1]) + 1).encode() + data[seal.end(1) :]


def _counter(data: bytes, number: int, counter: int) -> bytes:
    seal = seals_of(data)[number]
    return data[: seal.start(2)] + str(counter).encode() + data[seal.end(2) :]


def _year_2000(data: bytes, after: int) -> bytes:
    """``data`` with the year of the first ``updated`` at or after ``after`` made 2000."""
    at = _field(data, b"updated", after)
    return data[:at] + b"2000" + data[at + 4 :]


NOT_AS_SIGNED = "signature does not cover the file as it is"
NO_MATCH = "signature does not match the file"
# FORMAT.md "Reading" rule 5 (a field of an update or a seal that is not what it must be): a parse
# error, which comes before the layout's signature failure
RULE_5 = {"an-update": "secret Z update nonce must be a base64 string",
          "a-signer": "signer must be an ssk2... public key",
          "a-deleted-update": "deleted secret B update must have history and no value"}
TAMPERED: dict[str, tuple[Callable[[dict[str, bytes]], bytes], str]] = {
    # a flipped byte in an update (its value, its time), in the body (a chunk: the next test)
    "update-ciphertext": (lambda f: flip(f["team"], _field(f["team"], b"ciphertext",
                                                           f["team"].rindex(b"[[secrets.A.update]]")) + 9), NO_MATCH),
    "update-updated": (lambda f: _year_2000(f["team"], f["team"].rindex(b"[[secrets.C.update]]")), NO_MATCH),
    "body-value": (lambda f: flip(f["team"], _field(f["team"], b"ciphertext", f["team"].index(b"[secrets.B]")) + 5),
                   NO_MATCH),
    "body-sealed-key": (lambda f: flip(f["team"], _field(f["team"], b"sealed_key", 0) + 30), NO_MATCH),
    # a seal's base, counter or signer
    "middle-seal-base": (lambda f: _base_plus_one(f["team"], 2), NOT_AS_SIGNED),
    "last-seal-base": (lambda f: _base_plus_one(f["team"], -1), NOT_AS_SIGNED),
    "middle-seal-counter": (lambda f: _counter(f["team"], 1, int(seals_of(f["team"])[2][2])), NOT_AS_SIGNED),
    "last-seal-counter": (lambda f: _counter(f["team"], -1, 99), NO_MATCH),
    "middle-seal-signer": (lambda f: _other_signer(f["team"], 2), NO_MATCH),
    "last-seal-signer": (lambda f: _other_signer(f["team"], -1), NO_MATCH),
    "last-seal-signer-flipped": (lambda f: flip(f["team"], seals_of(f["team"])[-1].start(3) + 40), RULE_5["a-signer"]),
    # sections moved, dropped, or brought in
    "sections-swapped": (lambda f: _swap(f["team"], 2, 3), NOT_AS_SIGNED),
    "middle-section-removed": (lambda f: _drop(f["team"], 2), NO_MATCH),
    "section-from-a-sibling": (lambda f: f["team"] + f["sibling"][sections_of(f["sibling"])[-1][0] :], NO_MATCH),
    "last-section-from-a-sibling": (lambda f: f["team"][: sections_of(f["team"])[-1][0]]
                                    + f["sibling"][sections_of(f["sibling"])[-1][0] :], NO_MATCH),
    "section-from-the-project": (lambda f: f["team"] + f["project"][sections_of(f["project"])[-1][0] :],
                                 NOT_AS_SIGNED),
    # signatures
    "last-signature-from-an-earlier-seal": (lambda f: _signature_of(f["team"], -1, 2), NO_MATCH),
    "last-mac-flipped": (lambda f: flip(f["team"], seals_of(f["team"])[-1].start(5) + 3), NO_MATCH),
    # an earlier seal's signature and mac: signed by the next section (FORMAT.md: from "the
    # signature line of the seal before it"), so not free to change either
    "middle-signature-from-an-earlier-seal": (lambda f: _signature_of(f["team"], 2, 0), NO_MATCH),
    "middle-signature-flipped": (lambda f: flip(f["team"], seals_of(f["team"])[2].start(4) + 10), NO_MATCH),
    "first-mac-flipped": (lambda f: flip(f["team"], seals_of(f["team"])[0].start(5) + 10), NO_MATCH),
    # anything out of place, then a seal that looks valid (the last one, copied)
    "garbage-then-a-seal": (lambda f: f["team"] + b'\n[[secrets.Z.update]]\nupdated = "2026-01-01T00:00:00Z"\n'
                            + seals_of(f["team"])[-1][0], RULE_5["an-update"]),
    "a-seal-twice": (lambda f: f["team"] + seals_of(f["team"])[-1][0], NOT_AS_SIGNED),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampering_is_refused_by_readers_and_writers(
    case: str, sealed: dict[str, bytes], store: Store, me: Identity, cli_run: Run
) -> None:
    tamper, message = TAMPERED[case]
    bad = tamper(sealed)
    assert bad != sealed["team"]
    put_raw(store, bad)
    refused = StoreFormatError if message in RULE_5.values() else TamperedError
    for read in (lambda: store.read(TEAM, me), lambda: store.list(TEAM, me.public),
                 lambda: store.versions(TEAM, "A", me.public)):
        with pytest.raises(refused, match=re.escape(message)):
            read()
    with pytest.raises(refused, match=re.escape(message)):  # never sealed into a valid file
        store.set(TEAM, "B", "fake-b-new", me)
    assert raw(store) == bad
    for args in (["get", "team", "--name=A"], ["exec", "--", "true"]):
        line = one_line_error(cli_run(*args))
        assert message in line and "team.toml" in line, (args, line)


def test_the_untampered_file_reads(sealed: dict[str, bytes], store: Store, me: Identity, cli_run: Run) -> None:
    """The control for the cases above: the same file as written reads, through the same calls."""
    assert store.read(TEAM, me) == {"A": "fake-a3", "B": "fake-b1", "C": "fake-c1"}
    assert [name for name, _ in store.list(TEAM, me.public)] == ["A", "B", "C"]
    assert cli_run("get", "team", "--name=A").stdout == b"fake-a3"
    assert cli_run("exec", "--", "true").returncode == 0


def _sign_section(data: bytes, me: Identity, body: bytes, *, base: int | None = None,
                  counter: int | None = None) -> bytes:
    """``data`` with a section of ``body`` (its updates, chunks included) and a seal by ``me``,
    MAC'd and signed as FORMAT.md says (written here with hashlib and libsodium): what a
    trusted writer with a bug could write. The chunks are the bytes before each update header."""
    last = seals_of(data)[-1]
    base = int(last[1]) if base is None else base
    counter = int(last[2]) + 1 if counter is None else counter
    seal = f'\n[[seals]]\nbase = {base}\ncounter = {counter}\nsigner = "{me.public_text}"\n'.encode()
    updates = list(_UPDATE.finditer(body))
    signed = [data[data.index(b"\nsignature = ", last.start()) + 1 :]]  # the seal before's signature and mac
    for number, update in enumerate(updates):
        chunk_end = updates[number + 1].start() if number + 1 < len(updates) else len(body)
        text = body[update.start() : chunk_end]
        signed.append(text[: text.index(b"\n\n") + 1] if b"\n\n" in text else text)  # less the next chunk
    stanzas = {parse_public_key(m[1].decode()).box: base64.b64decode(m[2]) for m in _STANZA.finditer(data)}
    data_key = bindings.crypto_box_seal_open(stanzas[me.box_key], me.box_key, me._secret_key)
    mac_key = blake2b(b"", key=data_key, person=b"sstore-mackey-v1")
    previous = scopefile.parse(data, "team.toml").digest  # the digest the last seal signs, as the MAC shows:
    assert blake2b(frame("secretstore file", "secretstore/v4", previous), key=mac_key) == base64.b64decode(last[5])
    digest = blake2b(len(previous).to_bytes(4, "big") + previous + b"".join([*signed, seal]),
                     person=b"sstore-section-4")
    mac = blake2b(frame("secretstore file", "secretstore/v4", digest), key=mac_key)
    sign_secret = bindings.crypto_sign_seed_keypair(blake2b(b"", key=me._secret_key, person=b"sstore-signkey-1"))[1]
    signature = bindings.crypto_sign(frame("secretstore signature", "secretstore/v4", digest, mac), sign_secret)[:64]
    lines = f'signature = "{base64.b64encode(signature).decode()}"\nmac = "{base64.b64encode(mac).decode()}"\n'
    return data + body + seal + lines.encode()


def _update(store: Store, me: Identity, name: str, value: str | None, pointer: bytes = b"") -> bytes:
    """An update's text: ``name`` set to ``value`` (None: deleted), encrypted under the file's key."""
    unlocked = store.unlock(TEAM, me)
    assert unlocked is not None
    stamp = "2026-06-01T00:00:00Z"
    text = f'\n[[secrets.{name}.update]]\nupdated = "{stamp}"\nwriter = "{me.public_text}"\n'
    if value is None:
        text += "deleted = true\n"
    else:
        version = scopefile.encrypt(unlocked.file, unlocked.keys, name, value, stamp, me.public_text)
        text += f'nonce = "{base64.b64encode(version.nonce).decode()}"\n'
        text += f'ciphertext = "{base64.b64encode(version.ciphertext).decode()}"\n'
    return text.encode() + pointer


def _chunk_of(data: bytes, name: str) -> tuple[bytes, bytes]:
    """(the chunk before ``name``'s last update in ``data``, the pointer lines that bind it)."""
    header = data.rindex(f"\n[[secrets.{name}.update]]\n".encode())
    pointer = _POINTER.search(data, header)
    assert pointer is not None
    return data[header - int(pointer[1]) : header], pointer[0][1:]


SIGNED_LAYOUTS = {
    # (the section's body from the file as it is, whether a reader takes it)
    "two-names-in-one-section": (lambda s, m, d: _update(s, m, "X", "fake-x") + _update(s, m, "Y", "fake-y"), True),
    "a-seal-alone": (lambda s, m, d: b"", True),
    "an-update-after-its-chunk": (lambda s, m, d: _chunk_of(d, "A")[0] + _update(s, m, "A", "fake-a9",
                                                                                 _chunk_of(d, "A")[1]), True),
    "a-name-twice-in-one-section": (lambda s, m, d: _update(s, m, "X", "fake-x") + _update(s, m, "X", "fake-x2"),
                                    False),
    "a-deleted-update-without-a-chunk": (lambda s, m, d: _update(s, m, "B", None), False),
    "a-chunk-longer-than-its-pointer": (lambda s, m, d: b"\n" + _chunk_of(d, "A")[0]
                                        + _update(s, m, "A", "fake-a9", _chunk_of(d, "A")[1]), False),
}


@pytest.mark.parametrize("case", sorted(SIGNED_LAYOUTS))
def test_a_section_signed_by_a_trusted_writer_is_still_read_only_in_the_layout(
    case: str, store: Store, me: Identity
) -> None:
    """FORMAT.md: "A name appears at most once in a section; a deleted update MUST have a chunk",
    and the layout is exact; a valid signature over bytes out of it does not make them a file."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    data = raw(store)
    make, taken = SIGNED_LAYOUTS[case]
    forged = _sign_section(data, me, make(store, me, data))
    put_raw(store, forged)
    if taken:
        expected = {"two-names-in-one-section": {"A": "fake-a1", "B": "fake-b0", "X": "fake-x", "Y": "fake-y"},
                    "a-seal-alone": {"A": "fake-a1", "B": "fake-b0"},
                    "an-update-after-its-chunk": {"A": "fake-a9", "B": "fake-b0"}}[case]
        assert store.read(TEAM, me) == expected
        assert store.get_version(TEAM, "A", 1, me) == "fake-a0"
        assert check_v4(forged, me)[2] == 3
        store.set(TEAM, "B", "fake-b1", me)  # and a writer appends after it
        assert raw(store).startswith(forged)
    elif case == "a-deleted-update-without-a-chunk":  # rule 5 too: a parse error
        with pytest.raises(StoreFormatError, match=re.escape(RULE_5["a-deleted-update"])):
            store.read(TEAM, me)
    else:
        with pytest.raises(TamperedError, match=NOT_AS_SIGNED):
            store.read(TEAM, me)


@pytest.mark.parametrize("where", ["body-history", "section-chunk"])
def test_an_edited_chunk_refuses_that_names_history_only(
    where: str, sealed: dict[str, bytes], store: Store, me: Identity, cli_run: Run
) -> None:
    """FORMAT.md, version 4: a chunk whose bytes do not match its length and digest refuses that
    name's history only; the current values stay usable. B's chunk is in the history after the
    body (no section changed B); C's latest chunk is in the section that changed C last."""
    data = sealed["team"]
    name, at = ("B", data.index(b"[[secrets.B.history]]")) if where == "body-history" else (
        "C", data.rindex(b"[[secrets.C.history]]"))
    assert (at < sections_of(data)[0][0]) == (where == "body-history")
    bad = flip(data, _field(data, b"ciphertext", at) + 5)
    put_raw(store, bad)
    values = {"A": "fake-a3", "B": "fake-b1", "C": "fake-c1"}
    assert store.read(TEAM, me) == values
    assert [row[0] for row in store.listing(TEAM, me.public)] == ["A", "B", "C"]
    assert cli_run("get", "team", f"--name={name}").stdout == values[name].encode()
    assert cli_run("exec", "--", "true").returncode == 0
    damaged = f"the earlier versions of {name} do not match what its entry says"
    with pytest.raises(TamperedError, match=damaged):
        store.versions(TEAM, name, me.public)
    with pytest.raises(TamperedError, match=damaged):
        store.get_version(TEAM, name, 1, me)
    for args in (["history", "team", f"--name={name}"], ["get", "team", f"--name={name}", "--version=1"],
                 ["rollback", "team", f"--name={name}", "--to=1"]):
        assert damaged in one_line_error(cli_run(*args)), args
    assert store.get_version(TEAM, "A", 1, me) == "fake-a2"  # the other names' history is intact
    with pytest.raises(TamperedError, match=damaged):  # a write that needs that history: nothing written
        store.set(TEAM, name, "fake-new", me)
    assert raw(store) == bad
    store.set(TEAM, "A", "fake-a4", me)  # a write that does not: appended, the damage left as it is
    assert raw(store).startswith(bad)
    store.set_many(TEAM, {"A": "fake-a5", "D": "fake-d0"}, me)  # written whole: the chunk carried, still damaged
    assert len(seals_of(raw(store))) == 1
    assert store.read(TEAM, me) == {**values, "A": "fake-a5", "D": "fake-d0"}
    with pytest.raises(TamperedError, match=damaged):  # never made valid by a new signature
        store.versions(TEAM, name, me.public)


# --- 5. a file cut back to an earlier seal ------------------------------------------------------


def test_a_file_cut_back_to_an_earlier_seal_is_a_rollback_for_a_reader_that_read_later(
    store: Store, me: Identity, cli_run: Run, tmp_path: Path
) -> None:
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    earlier = raw(store)
    assert cli_run("exec", "--", "true").returncode == 0  # a snapshot of that head, made then
    store.set(TEAM, "A", "fake-a2", me)
    store.set(TEAM, "C", "fake-c0", me)
    later = raw(store)
    assert cli_run("get", "team", "--name=A").stdout == b"fake-a2"  # this reader has read counter 4
    cut = later[: sections_of(later)[1][1]]  # the end of the second seal
    assert cut == earlier  # appending never rewrites: the prefix is the earlier file, byte for byte
    put_raw(store, cut)
    with pytest.raises(RollbackError, match="older than version 4 you already read"):
        store.read(TEAM, me)
    for args in (["get", "team", "--name=A"], ["exec", "--", "true"], ["list", "team"]):
        assert "rolled back" in one_line_error(cli_run(*args)), args  # the snapshot of that head: refused too
    with pytest.raises(RollbackError):
        store.set(TEAM, "B", "fake-b1", me)  # nor written over
    assert raw(store) == cut
    # a reader with no state accepts the older file, as FORMAT.md says it must ("What the format
    # does not protect"): nothing tells it a later version existed
    fresh = {"SECRETSTORE_STATE_DIR": str(tmp_path / "fresh-state"), "SECRETSTORE_CACHE_DIR": str(tmp_path / "fresh")}
    assert cli_run("get", "team", "--name=A", env=fresh).stdout == b"fake-a1"
    assert cli_run("get", "team", "--name=C", env=fresh).returncode == 1
    assert cli_run("get", "team", "--name=A", "--version=1", env=fresh).stdout == b"fake-a0"


# --- 6. a section cut short ---------------------------------------------------------------------


def _cache_files(cache: str) -> list[Path]:
    return sorted(p for p in Path(cache).rglob("*") if p.is_file()) if os.path.isdir(cache) else []


def _exec_value(cli_run: Run, name: str) -> bytes:
    done = cli_run("exec", "--", "sh", "-c", f'printf %s "${name}"')
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_writer_killed_mid_section_leaves_the_file_as_it_was(
    store: Store, me: Identity, cli_run: Run, isolated_env: dict[str, str]
) -> None:
    """The real console script killed by fsio.append_at's "append-partial" crash point, with half
    of its section written: every reader reads the file as it was before, keeps no snapshot or
    listing for it (it has no head), and the next write cuts the half section off."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    before = raw(store)
    done = cli_run("set", "team", "--name=A", "--value=fake-a2", env={"SECRETSTORE_TEST_CRASH_AT": "append-partial"})
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr)  # the append was taken
    torn = raw(store)
    assert torn.startswith(before) and len(torn) > len(before) and len(seals_of(torn)) == len(seals_of(before))
    assert scopefile.head_of(torn) is None and scopefile.head_of(store.read_head(TEAM) or b"") is None
    values = {"A": "fake-a1", "B": "fake-b0"}
    assert store.read(TEAM, me) == values
    assert store.get_version(TEAM, "A", 1, me) == "fake-a0"
    assert cli_run("get", "team", "--name=A").stdout == b"fake-a1"
    assert _exec_value(cli_run, "A") == b"fake-a1"
    assert _exec_value(cli_run, "A") == b"fake-a1"
    listed = cli_run("list", "team")
    assert listed.returncode == 0 and b" A " in listed.stdout and b" B " in listed.stdout
    assert _cache_files(isolated_env["cache"]) == []  # no snapshot, no listing: the file has no head
    done = cli_run("set", "team", "--name=C", "--value=fake-c0")
    assert done.returncode == 0, done.stderr
    after = raw(store)
    assert after.startswith(before) and after[len(before) :].startswith(b"\n[[secrets.C.update]]\n")
    assert check_v4(after, me)[2] == len(seals_of(before)) + 1  # the half section is gone
    assert cli_run("get", "team", "--name=A").stdout == b"fake-a1"
    assert _exec_value(cli_run, "C") == b"fake-c0"
    assert cli_run("list", "team").returncode == 0
    kept = [p.parent.name for p in _cache_files(isolated_env["cache"])]
    assert sorted(kept) == ["listings", "snapshots"]  # the control: with a seal at the end, both are kept



def test_a_writer_killed_right_after_its_append_leaves_the_new_file(
    store: Store, me: Identity, cli_run: Run
) -> None:
    """The "after-append" crash point: the section is whole and fsync-ed, the writer dies before
    recording its counter; readers take the new file, and the next write appends after it."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    before = raw(store)
    done = cli_run("set", "team", "--name=A", "--value=fake-a1", env={"SECRETSTORE_TEST_CRASH_AT": "after-append"})
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr)
    after = raw(store)
    assert after.startswith(before) and check_v4(after, me)[2] == 2
    assert cli_run("get", "team", "--name=A").stdout == b"fake-a1"
    assert cli_run("set", "team", "--name=B", "--value=fake-b1").returncode == 0
    assert raw(store).startswith(after)
    counter, _signer, count = check_v4(raw(store), me)
    assert (counter, count) == (3, 3)


def test_a_failed_append_is_cut_back_and_nothing_changes(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write error halfway through the section (a full disk): fsio.append_at cuts the file back
    to where the section began before it reports the error."""
    import errno

    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    before = raw(store)
    real_pwrite = os.pwrite
    calls: list[int] = []

    def disk_fills(fd: int, data: bytes | memoryview, offset: int) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_pwrite(fd, bytes(data)[: len(data) // 2], offset)  # a short write, then no space
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(fsio.os, "pwrite", disk_fills)
        with pytest.raises(SecretStoreError, match="cannot write") as refused:
            store.set(TEAM, "B", "fake-b1", me)
    assert len(calls) == 2 and refused.value.hint is not None and "full" in refused.value.hint
    assert raw(store) == before
    assert store.read(TEAM, me) == {"A": "fake-a1", "B": "fake-b0"}
    store.set(TEAM, "B", "fake-b1", me)
    assert raw(store).startswith(before) and check_v4(raw(store), me)[2] == 3


def _next_section(store: Store, me: Identity, change: Callable[[], object]) -> tuple[bytes, bytes]:
    """(the file, the section ``change`` appends to it), the file left as it was."""
    before = raw(store)
    change()
    section = raw(store)[len(before) :]
    put_raw(store, before)
    store.state().update(lambda fresh: fresh.counters.pop("team.toml", None))  # as if never read
    return before, section


@pytest.mark.parametrize("cut", ["a-third", "inside-the-update", "inside-the-signature", "inside-the-mac",
                                 "the-update-without-a-seal"])
def test_bytes_after_the_last_seal_without_a_seal_are_ignored_then_cut_off(
    cut: str, store: Store, me: Identity
) -> None:
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "C", "fake-c0", me)
    before, section = _next_section(store, me, lambda: store.set(TEAM, "A", "fake-a-never", me))
    at = {"a-third": len(section) // 3,
          "inside-the-update": section.index(b"[[secrets.A.update]]") + 40,
          "inside-the-signature": section.index(b"\nsignature = ") + 30,
          "inside-the-mac": len(section) - 3,
          "the-update-without-a-seal": section.index(b"\n[[seals]]")}[cut]
    torn = before + section[:at]
    put_raw(store, torn)
    assert store.read(TEAM, me) == {"A": "fake-a0", "B": "fake-b0", "C": "fake-c0"}
    assert [v.state for v in store.versions(TEAM, "A", me.public)] == ["current"]
    assert [row[0] for row in store.listing(TEAM, me.public)] == ["A", "B", "C"]
    store.set(TEAM, "B", "fake-b1", me)
    after = raw(store)
    assert after.startswith(before) and after[len(before) :].startswith(b"\n[[secrets.B.history]]\n")
    assert b"fake-a-never" not in after and check_v4(after, me)[2] == len(seals_of(before)) + 1
    assert store.read(TEAM, me) == {"A": "fake-a0", "B": "fake-b1", "C": "fake-c0"}


@pytest.mark.parametrize("edit", ["last-newline-dropped", "counter-zero-padded", "mac-character-changed"])
def test_a_whole_last_section_edited_by_a_byte_is_refused_not_skipped(
    edit: str, store: Store, me: Identity
) -> None:
    """Found by review: dropping the file's last newline, or editing one byte of the last seal,
    made the whole last section look like an append cut short: readers skipped it and the next
    writer cut it off (a value rotated in it came back). A seal whole up to its MAC's closing
    quote is never skipped: the file is refused, and nothing is cut off."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1-rotated", me)
    data = raw(store)
    last = data.rindex(b"\n[[seals]]\n")
    counter_at = data.index(b"\ncounter = ", last) + len(b"\ncounter = ")
    mac_at = data.index(b'\nmac = "', last) + len(b'\nmac = "') + 5
    bad = {"last-newline-dropped": data[:-1],
           "counter-zero-padded": data[:counter_at] + b"0" + data[counter_at:],
           "mac-character-changed": data[:mac_at] + b"-" + data[mac_at + 1 :]}[edit]
    put_raw(store, bad)
    store.state().update(lambda fresh: fresh.counters.pop("team.toml", None))  # a reader that never read it
    refused = (TamperedError, StoreFormatError)  # not taken for the state before that section
    with pytest.raises(refused):
        store.read(TEAM, me)
    with pytest.raises(refused):
        store.set(TEAM, "B", "fake-b1", me)
    assert raw(store) == bad  # nothing cut off, nothing written


def test_an_unsealed_tail_is_read_past_cheaply_reported_by_doctor_and_cut_with_a_warning(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by review: complete updates appended with no seal after them were skipped, but
    reading past them read the file twice and ran the reference parser over it (39 s and 1.4
    GB at 64 MiB), for every exec, and nothing said so. Now the reader starts at the last
    whole seal's base and only a regular expression looks at the tail; doctor reports it; the
    next writer says what it cut off."""
    from secretstore import doctor

    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    data = raw(store)
    update = data[data.index(b"\n[[secrets.A.update]]\n") : data.rindex(b"\n[[seals]]\n")]
    assert b"history_bytes" in update  # a whole update, its chunk left behind: never sealed
    tail = update.replace(b"history_bytes", b"rotate = true\nhistory_bytes") * 200
    put_raw(store, data + tail)

    def never(*_args: object) -> None:
        raise AssertionError("the reference parser ran over a file that has an unsealed tail")

    with monkeypatch.context() as patched:
        patched.setattr(scopefile, "parse_reference", never)
        assert store.read(TEAM, me) == {"A": "fake-a1", "B": "fake-b0"}
        assert [row[0] for row in store.listing(TEAM, me.public)] == ["A", "B"]
        assert store.load(TEAM).unsealed == len(tail)  # type: ignore[union-attr]
    found = [f.message for f in doctor.diagnose(store) if f.level == doctor.WARN]
    assert any(f"ends in {len(tail)} byte(s) after its last seal" in message for message in found), found
    capsys.readouterr()
    store.set(TEAM, "B", "fake-b1", me)
    assert f"removed {len(tail)} byte(s) after its last seal" in capsys.readouterr().err
    after = raw(store)
    assert after.startswith(data) and b"rotate = true" not in after
    assert store.read(TEAM, me) == {"A": "fake-a1", "B": "fake-b1"}


@pytest.mark.parametrize("limit", ["MAX_SECTIONS", "MAX_UPDATES", "MAX_UNSEALED_BYTES"])
def test_more_sections_updates_or_unsealed_bytes_than_a_reader_takes_are_refused(
    limit: str, store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: 222,000 seals cost a reader 18 s before the refusal. Writers stay far
    below these limits (a file is written whole after 64 sections), so a file over one is
    refused before its sections are read."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    for n in range(3):
        store.set(TEAM, "A", f"fake-a{n + 1}", me)
    data = raw(store)
    assert store.read(TEAM, me)["A"] == "fake-a3"
    if limit == "MAX_UNSEALED_BYTES":
        data += b"\n[[secrets.A.history]]\nupdated = " + b"9" * 200  # a tail longer than the limit below
        put_raw(store, data)
        assert store.read(TEAM, me)["A"] == "fake-a3"  # under the real limit: skipped
    monkeypatch.setattr(scopefile, limit, {"MAX_SECTIONS": 3, "MAX_UPDATES": 2, "MAX_UNSEALED_BYTES": 100}[limit])
    with pytest.raises(SecretStoreError):
        store.read(TEAM, me)
    with pytest.raises(SecretStoreError):
        store.set(TEAM, "B", "fake-b1", me)
    assert raw(store) == data


# --- 7. exec's snapshot and list's cache follow the appends ------------------------------------


def test_exec_after_an_append_gives_the_new_value_then_reads_only_head_and_end(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_run: Run
) -> None:
    from secretstore import context
    from secretstore import layers as layers_module

    cache = str(tmp_path / "snaps")

    def load() -> dict[str, str]:
        layers, warnings = layers_module.load_layers(store, context.Context(), lambda: me, snapshot_dir=cache)
        assert warnings == []
        return dict(layers)[TEAM]

    unlocked: list[Scope] = []
    real_unlock = Store.unlock_file

    def counting(self: Store, scope: Scope, *args: object, **kwargs: object) -> object:
        unlocked.append(scope)
        return real_unlock(self, scope, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "unlock_file", counting)
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    assert load() == {"A": "fake-a0", "B": "fake-b0"}
    for step, (name, value) in enumerate([("A", "fake-a1"), ("C", "fake-c0"), ("A", "fake-a2")]):
        store.set(TEAM, name, value, me)  # appends (unlock_file: the append's own verification)
        unlocked.clear()
        values = load()
        assert values[name] == value and unlocked == [TEAM], step  # a miss: verified again
        assert len(_cache_files(cache)) == 1  # replaced in place
    real_read = Store.read_bytes
    reads: list[tuple[int | None, int]] = []

    def head_and_end_only(self: Store, scope: Scope, *, prefix: int | None = None, until: bytes | None = None,
                          suffix: int = 0) -> bytes | None:
        reads.append((prefix, suffix))
        if prefix is None:
            raise AssertionError(f"read {scope.relpath} past its head")
        return real_read(self, scope, prefix=prefix, until=until, suffix=suffix)

    unlocked.clear()
    with monkeypatch.context() as patched:
        patched.setattr(Store, "read_bytes", head_and_end_only)
        patched.setattr(Store, "read_current", lambda *_: pytest.fail("read the file past its head"))
        assert load() == {"A": "fake-a2", "B": "fake-b0", "C": "fake-c0"}
    assert unlocked == [] and reads == [(scopefile.HEAD_BYTES, scopefile.SEAL_BYTES)]
    # the console script: the value just appended, never the snapshot of the file before it
    assert _exec_value(cli_run, "A") == b"fake-a2"
    assert cli_run("set", "team", "--name=A", "--value=fake-a3").returncode == 0
    assert _exec_value(cli_run, "A") == b"fake-a3"
    assert _exec_value(cli_run, "A") == b"fake-a3"


def test_list_after_an_append_shows_the_change_without_verifying_again(
    isolated_env: dict[str, str], me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_run: Run
) -> None:
    cache = str(tmp_path / "listings")
    store = Store(isolated_env["store"], listing_dir=cache)
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    assert [row[0] for row in store.listing(TEAM, me.public)] == ["A", "B"]
    read: list[str] = []
    real_current, real_verify = Store.read_current, Store.verify

    def current(self: Store, scope: Scope) -> bytes | None:
        read.append("read")
        return real_current(self, scope)

    def verify(self: Store, *args: object, **kwargs: object) -> object:
        read.append("verify")
        return real_verify(self, *args, **kwargs)  # type: ignore[arg-type]

    for name, change in [("NEW", lambda: store.set(TEAM, "NEW", "fake-new", me)),
                         ("A", lambda: store.set(TEAM, "A", "fake-a1", me)),
                         ("B", lambda: store.delete(TEAM, "B", me))]:
        before = raw(store)
        change()
        assert raw(store).startswith(before), name  # appended
        with monkeypatch.context() as counted:
            counted.setattr(Store, "read_current", current)
            counted.setattr(Store, "verify", verify)
            rows = store.listing(TEAM, me.public)
        assert read == [], name  # the rows the write kept, bound to the new head
        assert rows == Store(isolated_env["store"]).listing(TEAM, me.public), name  # what a full read gives
    assert [row[0] for row in rows] == ["A", "NEW"]
    # the console script keeps its own cache the same way
    assert b"NEW" in cli_run("list", "team").stdout
    assert cli_run("set", "team", "--name=LATER", "--value=fake-later").returncode == 0
    assert b"LATER" in cli_run("list", "team").stdout



def test_snapshot_and_listing_of_an_appended_file_are_bound_to_its_head_as_format_md_says(
    store: Store, me: Identity, cli_run: Run, isolated_env: dict[str, str]
) -> None:
    """FORMAT.md, "Exec snapshots": a version-4 file's head is its lines format through store,
    then its last seal from the blank line before ``[[seals]]`` to the end of the file; the
    snapshot and list's rows kept after an append open under the digest of that head."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    assert cli_run("exec", "--", "true").returncode == 0 and cli_run("list", "team").returncode == 0
    assert cli_run("set", "team", "--name=C", "--value=fake-c0").returncode == 0
    assert cli_run("exec", "--", "true").returncode == 0 and cli_run("list", "team").returncode == 0
    data = raw(store)
    assert len(seals_of(data)) == 3
    head = data[: data.index(b"\n\n")] + b"\n" + data[data.rindex(b"\n[[seals]]\n") :]
    relpath, root = TEAM.relpath.encode(), store.root.encode()
    cache = Path(isolated_env["cache"])
    # the snapshot: name, key, associated data, plaintext
    name = bindings.crypto_generichash_blake2b_salt_personal(b"\0".join([me.box_key, root, relpath]),
                                                            digest_size=16).hex()
    blob = (cache / "snapshots" / name).read_bytes()
    magic = b"secretstore-snapshot/v2\n"
    key = blake2b(b"", key=me._secret_key, person=b"sstore-snapkey-1")
    aad = magic + blake2b(head, person=b"sstore-snapfile1") + root + b"\0" + relpath
    plain = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[48:], aad, blob[24:48], key)
    items = plain.decode().split("\0")
    assert dict(zip(items[0::2], items[1::2], strict=True)) == {"A": "fake-a1", "B": "fake-b0", "C": "fake-c0"}
    # list's rows: the binding line
    name = "l-" + bindings.crypto_generichash_blake2b_salt_personal(b"\0".join([b"listing", root, relpath]),
                                                                   digest_size=16).hex()
    listing = (cache / "listings" / name).read_bytes()
    magic = b"secretstore-listing/v1\n"
    binding = blake2b(b"\0".join([magic, head, root, relpath]), person=b"sstore-snapfile1").hex()
    assert listing.startswith(magic + binding.encode() + b"\n")
    assert listing.split(b"\n")[3] == b"A\tB\tC"


# --- 8. a hard-linked file, a file replaced since it was read -----------------------------------


def test_a_hard_linked_scope_file_is_written_whole_and_its_copy_keeps_the_old_bytes(
    store: Store, me: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    old = raw(store)
    backup = tmp_path / "backup.toml"
    os.link(store.path(TEAM), backup)
    paths = Paths(monkeypatch)
    store.set(TEAM, "B", "fake-b1", me)
    assert (paths.appended, paths.whole) == (0, 1)
    assert backup.read_bytes() == old  # the copy did not change with it
    new = raw(store)
    assert check_v4(new, me)[2] == 1 and not new.startswith(old)
    assert os.stat(store.path(TEAM)).st_ino != os.stat(backup).st_ino
    assert state_of(store, me)["A"][4][0][0] == "fake-a0" and store.read(TEAM, me) == {"A": "fake-a1", "B": "fake-b1"}
    store.set(TEAM, "B", "fake-b2", me)  # one link again: appends
    assert (paths.appended, paths.whole) == (1, 1) and raw(store).startswith(new)


def test_append_at_writes_nothing_to_a_file_replaced_since_it_was_read(store: Store, me: Identity) -> None:
    store.set_many(TEAM, {"A": "fake-a0"}, me)
    path = store.path(TEAM)
    kept: list[fsio.OpenFile] = []
    data = fsio.read_store_file(store.root, TEAM.relpath, until=scopefile.BODY_END, keep=kept)
    assert data is not None and len(kept) == 1
    read = kept[0]
    try:
        original = raw(store)
        replacement = Path(path).with_name("replacement")
        replacement.write_bytes(original)
        os.replace(replacement, path)  # the same bytes, another file
        assert fsio.append_at(path, b"\nappended\n", len(original), read) is False
        assert raw(store) == original
        assert fsio.append_at(path, b"x", len(original) + 1, None) is False  # past its end
        assert fsio.append_at(path, b"\nfake tail\n", len(original), None) is True  # the control
        assert raw(store) == original + b"\nfake tail\n"
    finally:
        read.close()


def test_a_set_whose_file_is_replaced_before_the_append_writes_the_replacement_whole(
    store: Store, me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    path = Path(store.path(TEAM))
    original = raw(store)
    real_append = fsio.append_at
    outcomes: list[bool] = []

    def replaced_first(target: str, data: bytes, offset: int, read: fsio.OpenFile | None) -> bool:
        copy = path.with_name("copy")
        copy.write_bytes(path.read_bytes())
        os.chmod(copy, 0o600)
        os.replace(copy, target)  # as a checkout would, between the read and the append
        outcomes.append(real_append(target, data, offset, read))
        return outcomes[-1]

    monkeypatch.setattr(fsio, "append_at", replaced_first)
    store.set(TEAM, "B", "fake-b1", me)
    assert outcomes == [False]  # not appended to the file it did not read
    data = raw(store)
    assert check_v4(data, me)[2] == 1 and not data.startswith(original)  # the full path: written whole
    assert store.read(TEAM, me) == {"A": "fake-a1", "B": "fake-b1"}
    assert store.get_version(TEAM, "A", 1, me) == "fake-a0"


# --- 9. git: two writers append on their branches ----------------------------------------------


@needs_git
def test_two_writers_append_on_their_branches_and_the_driver_merges_them_into_one_seal(tmp_path: Path) -> None:
    from secretstore.identity import load_identity

    people = team_of(tmp_path, ("alice", "bob"))
    alice, bob = people["alice"], people["bob"]
    alice.ss("set", "team", "--name=SHARED", "--value=fake-shared-0")
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.ss("set", "team", "--name=ALICE", "--value=fake-alice-0")
    alice.publish("the team store")
    bob.clone(people["origin"])  # type: ignore[arg-type]
    bob.ss("trust", alice.key)
    published = (alice.store / "team.toml").read_bytes()
    # a version is known to the driver by its name, time (to the second) and writer: the changes
    # of a name published in this second would look like the version published
    time.sleep(1 - time.time() % 1 + 0.01)
    for args in (["--name=ALICE", "--value=fake-alice-1"], ["--name=SHARED", "--value=fake-shared-alice"]):
        alice.ss("set", "team", *args)
    ours_alice = (alice.store / "team.toml").read_bytes()
    assert ours_alice.startswith(published) and len(seals_of(ours_alice)) == len(seals_of(published)) + 2
    alice.publish("alice's changes")
    for args in (["--name=BOB", "--value=fake-bob-0"], ["--name=BOB", "--value=fake-bob-1"]):
        bob.ss("set", "team", *args)
    ours_bob = (bob.store / "team.toml").read_bytes()
    assert ours_bob.startswith(published) and len(seals_of(ours_bob)) == len(seals_of(published)) + 2
    bob.git("commit", "-qam", "bob's changes")
    bob.pull("--no-rebase")  # git merges team.toml through the secretstore driver
    merged = (bob.store / "team.toml").read_bytes()
    bob_identity = load_identity(bob.env["SECRETSTORE_IDENTITY"])
    counter, signer, count = check_v4(merged, bob_identity)
    assert (signer, count) == (bob.key, 1)  # written whole, signed by the one who merged
    assert counter > max(int(seals_of(side)[-1][2]) for side in (ours_alice, ours_bob))
    assert b"<<<<<<<" not in merged and b"unmerged" not in merged
    expected = {"SHARED": "fake-shared-alice", "ALICE": "fake-alice-1", "BOB": "fake-bob-1"}
    earlier = {"SHARED": "fake-shared-0", "ALICE": "fake-alice-0", "BOB": "fake-bob-0"}
    bob.git("push", "-q", "origin", "HEAD:main")  # the merge commit
    alice.pull("--no-rebase")
    for person in (bob, alice):
        for name, value in expected.items():
            assert person.ss("get", "team", f"--name={name}").stdout == value, (person.name, name)
            assert person.ss("get", "team", f"--name={name}", "--version=1").stdout == earlier[name], name
    # and the merged file appends again from here
    alice.ss("set", "team", "--name=ALICE", "--value=fake-alice-2")
    after = (alice.store / "team.toml").read_bytes()
    assert after.startswith(merged) and len(seals_of(after)) == 2


@needs_git
def test_appended_sections_merged_as_text_without_the_driver_give_the_conflict_marker_error(
    isolated_env: dict[str, str], cli_run: Run, tmp_path: Path
) -> None:
    store = isolated_env["store"]

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", *args], cwd=store, capture_output=True, timeout=60, check=False)

    os.makedirs(store, exist_ok=True)
    assert git("init", "-q").returncode == 0
    assert cli_run("set", "team", "--name=A", "--value=fake-a").returncode == 0
    assert cli_run("set", "team", "--name=B", "--value=fake-b").returncode == 0
    assert git("add", "-A").returncode == 0 and git("commit", "-qm", "a").returncode == 0
    base = (Path(store) / "team.toml").read_bytes()
    assert git("checkout", "-qb", "other").returncode == 0
    other_state = {"SECRETSTORE_STATE_DIR": str(tmp_path / "other-state")}  # another person's counters
    assert cli_run("set", "team", "--name=A", "--value=fake-a-other", env=other_state).returncode == 0
    assert git("commit", "-qam", "other").returncode == 0
    assert git("checkout", "-q", "-").returncode == 0
    assert cli_run("set", "team", "--name=B", "--value=fake-b-ours").returncode == 0
    ours = (Path(store) / "team.toml").read_bytes()
    assert ours.startswith(base) and len(seals_of(ours)) == len(seals_of(base)) + 1  # an append on each side
    assert git("commit", "-qam", "ours").returncode == 0
    merged = git("merge", "other")
    assert merged.returncode != 0 and b"CONFLICT" in merged.stdout  # both appended at the same end
    for args in (["get", "team", "--name=A"], ["list", "team"], ["exec", "--", "true"],
                 ["set", "team", "--name=C", "--value=fake-c"]):
        line = one_line_error(cli_run(*args))
        assert "team.toml holds git's conflict markers" in line, (args, line)
    assert b"fake-c" not in (Path(store) / "team.toml").read_bytes()


# --- 10. version 3 files ------------------------------------------------------------------------

VECTORS = Path(__file__).parent / "vectors"


def _v3_vector(store: Store) -> tuple[Identity, dict[str, str], dict[str, list[str]]]:
    """tests/vectors/scope/v3-success-team.toml put in the store as team.toml: (its reader, its
    values, its names' earlier values, oldest first)."""
    import json

    from secretstore.identity import load_identity

    text = (VECTORS / "scope" / "v3-success-team.toml").read_bytes()
    header, body = text.split(b"# ---\n", 1)
    fields = dict(line[2:].split(": ", 1) for line in header.decode().splitlines())
    assert fields["expect"] == "success" and fields["identity"] == "identity-a" and "trusted" not in fields
    identity_path = Path(store.root).parent / "identity-a"
    identity_path.write_bytes((VECTORS / "identity-a").read_bytes())
    os.chmod(identity_path, 0o600)
    os.makedirs(store.root, mode=0o700, exist_ok=True)
    put_raw(store, body)
    os.chmod(store.path(TEAM), 0o600)
    return load_identity(str(identity_path)), json.loads(fields["values"]), json.loads(fields["history"])


def test_a_version_3_file_is_read_and_a_one_name_set_still_splices_it_as_version_3(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, values, history = _v3_vector(store)
    assert raw(store).startswith(scopefile.V3_START)
    assert store.read(TEAM, reader) == values
    for name, earlier in history.items():
        assert [store.get_version(TEAM, name, n, reader) for n in range(len(earlier), 0, -1)] == earlier
    paths = Paths(monkeypatch)
    before = raw(store)
    store.set(TEAM, "API_KEY", "fake-api-key-new", reader)
    assert (paths.appended, paths.whole) == (1, 0)  # the splice (scopefile.Splice), not the full path
    data = raw(store)
    assert data.startswith(scopefile.V3_START) and b"[[seals]]" not in data and b".update]]" not in data
    assert data.count(b"\nsignature = ") == 1 and not data.startswith(before)
    assert store.read(TEAM, reader) == {**values, "API_KEY": "fake-api-key-new"}
    assert store.get_version(TEAM, "API_KEY", 1, reader) == values["API_KEY"]
    assert [v.state for v in store.versions(TEAM, "OLD_TOKEN", reader.public)][0] == "deleted"
    # a write of two names is the full writer's: version 4, one seal, every version kept
    store.set_many(TEAM, {"API_KEY": "fake-api-key-3", "NEW": "fake-new"}, reader)
    data = raw(store)
    assert check_v4(data, reader)[2] == 1
    assert store.read(TEAM, reader) == {**values, "API_KEY": "fake-api-key-3", "NEW": "fake-new"}
    assert [store.get_version(TEAM, "API_KEY", n, reader) for n in (3, 2, 1)] == [
        history["API_KEY"][-1], values["API_KEY"], "fake-api-key-new"]
    assert store.undelete(TEAM, "OLD_TOKEN", reader) is None
    assert store.read(TEAM, reader)["OLD_TOKEN"] == history["OLD_TOKEN"][-1]
    assert len(seals_of(raw(store))) == 2  # and from version 4 on, one name appends


def test_write_format_v3_makes_a_version_3_file_and_import_writes_it_as_version_4(
    me: Identity, monkeypatch: pytest.MonkeyPatch, cli_run: Run, isolated_env: dict[str, str], tmp_path: Path
) -> None:
    store = Store(isolated_env["store"])
    with monkeypatch.context() as patched:
        patched.setattr(scopefile, "WRITE_FORMAT", scopefile.FORMAT_V3)
        store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
        store.set_many(TEAM, {"A": "fake-a1", "B": "fake-b1"}, me)
    assert raw(store).startswith(scopefile.V3_START)
    assert cli_run("set", "team", "--name=A", "--value=fake-a2").returncode == 0  # spliced: still version 3
    assert raw(store).startswith(scopefile.V3_START)
    dotenv = tmp_path / "import.env"
    dotenv.write_text("B=fake-b2\nC=fake-c0\n")
    done = cli_run("import", "team", str(dotenv))
    assert done.returncode == 0, done.stderr
    data = raw(store)
    assert check_v4(data, me)[2] == 1
    assert store.read(TEAM, me) == {"A": "fake-a2", "B": "fake-b2", "C": "fake-c0"}
    assert [store.get_version(TEAM, "A", n, me) for n in (2, 1)] == ["fake-a0", "fake-a1"]
    assert [store.get_version(TEAM, "B", n, me) for n in (2, 1)] == ["fake-b0", "fake-b1"]


@pytest.mark.parametrize("seal", ["base-one-more", "counter-not-increasing"])
def test_a_seal_re_signed_with_another_base_or_a_counter_not_increasing_is_refused(
    seal: str, store: Store, me: Identity
) -> None:
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "A", "fake-a1", me)
    data = raw(store)
    last = seals_of(data)[-1]
    changed = {"base": int(last[1]) + 1} if seal == "base-one-more" else {"counter": int(last[2])}
    update = _update(store, me, "X", "fake-x")
    put_raw(store, _sign_section(data, me, update, **changed))
    with pytest.raises(TamperedError, match=NOT_AS_SIGNED):
        store.read(TEAM, me)
    put_raw(store, _sign_section(data, me, update))  # the control
    assert store.read(TEAM, me)["X"] == "fake-x"


# --- found by a new user's review of the git flow ---------------------------------------------


def test_a_file_cut_short_says_so_instead_of_suggesting_accept_revert(store: Store, me: Identity) -> None:
    """Cutting bytes off the end of a file a reader had read in full said "rolled back (an old
    copy put back, or a revert)" and suggested accept-revert, which gives up the newer version.
    Nothing was put back: the file was cut short."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "NEW_A", "fake-new-a", me)
    data = raw(store)
    put_raw(store, data[:-20])
    with pytest.raises(RollbackError) as refused:
        store.read(TEAM, me)
    assert "after its last seal (a section cut short" in refused.value.message
    assert refused.value.hint is not None and "git checkout -- FILE" in refused.value.hint
    assert "accept-revert' would give up the newer version" in refused.value.hint


def test_get_of_a_name_only_a_cut_section_held_gives_the_refusal_not_no_such_secret(
    store: Store, me: Identity, cli_run: Run
) -> None:
    """`get` looked the name up before checking the file's signature, writer and version, so it
    answered "no team secret 'NEW_A'" about a file it would refuse."""
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    store.set(TEAM, "NEW_A", "fake-new-a", me)
    assert cli_run("get", "team", "--name=NEW_A").stdout == b"fake-new-a"
    put_raw(store, raw(store)[:-20])
    line = one_line_error(cli_run("get", "team", "--name=NEW_A"))
    assert "no team secret" not in line and "after its last seal" in line, line
    line = one_line_error(cli_run("get", "team", "--name=NEVER_SET"))
    assert "no team secret" not in line and "after its last seal" in line, line


def test_a_file_cut_before_its_only_seal_says_it_has_no_seal(store: Store, me: Identity) -> None:
    store.set_many(TEAM, {"A": "fake-a0", "B": "fake-b0"}, me)
    data = raw(store)
    put_raw(store, data[: data.rindex(b"\n[[seals]]\n") + 1])
    with pytest.raises(StoreFormatError, match="no seal: the signed end of the file is missing"):
        store.read(TEAM, me)
