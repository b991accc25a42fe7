"""History, undo, audit and offboarding (issue 12), through the real console script.

Values seen in any output are fake; every check that output holds no value
greps for the values themselves.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from secretstore import audit, crypto, fsio, scopefile
from secretstore.errors import SecretStoreError
from secretstore.identity import Identity
from secretstore.keys import PublicKey, encode_key
from secretstore.store import TEAM, Scope, Store
from tests.sharing_helpers import Person, team_of

VALUES = ("fake-v1-alpha", "fake-v2-bravo", "fake-v3-charlie")


def set_values(cli_run, name: str, *values: str) -> None:  # type: ignore[no-untyped-def]
    for value in values:
        done = cli_run("set", "team", f"--name={name}", f"--value={value}")
        assert done.returncode == 0, done.stderr


def no_value_in(*outputs: bytes) -> None:
    for output in outputs:
        for value in VALUES:
            assert value.encode() not in output


def test_history_lists_versions_without_values_and_get_reads_one(cli_run) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "TOKEN", *VALUES)
    done = cli_run("history", "team", "--name=TOKEN", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["version"], r["state"]) for r in rows] == [(0, "current"), (1, "previous"), (2, "previous")]
    me = cli_run("identity").stdout.decode().strip()
    assert all(r["writer"] == me for r in rows)
    table = cli_run("history", "team", "--name=TOKEN")
    no_value_in(done.stdout, table.stdout, table.stderr)
    assert table.stdout.decode().count(f"| you ({me[:16]}...) |") == 3  # your own writes say so
    assert f"| you ({me[:16]}...) |" in cli_run("audit", "--name=TOKEN").stdout.decode()
    for number, value in ((0, VALUES[2]), (1, VALUES[1]), (2, VALUES[0])):
        got = cli_run("get", "team", "--name=TOKEN", f"--version={number}")
        assert (got.returncode, got.stdout) == (0, value.encode())
    missing = cli_run("get", "team", "--name=TOKEN", "--version=3")
    assert missing.returncode == 1 and b"has no version 3 (versions 0 to 2 are kept)" in missing.stderr
    bad = cli_run("get", "team", "--name=TOKEN", "--version=-1")
    assert bad.returncode == 2


def test_history_is_bounded_at_ten_previous_values(cli_run) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "TOKEN", *(f"fake-{n:02d}" for n in range(13)))
    rows = json.loads(cli_run("history", "team", "--name=TOKEN", "--json").stdout)
    assert len(rows) == 11  # the current value and the 10 before it
    assert cli_run("get", "team", "--name=TOKEN", "--version=10").stdout == b"fake-02"


def test_delete_undelete_and_rollback(cli_run) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "TOKEN", VALUES[0], VALUES[1])
    deleted = cli_run("delete", "team", "--name=TOKEN")
    assert deleted.returncode == 0 and b"secretstore undelete team --name TOKEN" in deleted.stderr
    assert cli_run("get", "team", "--name=TOKEN").returncode == 1
    rows = json.loads(cli_run("history", "team", "--name=TOKEN", "--json").stdout)
    assert rows[0]["state"] == "deleted" and len(rows) == 3
    assert cli_run("undelete", "team", "--name=TOKEN").returncode == 0
    assert cli_run("get", "team", "--name=TOKEN").stdout == VALUES[1].encode()
    again = cli_run("undelete", "team", "--name=TOKEN")
    # a state, not a usage error: exit 1, as for a name with nothing to undelete
    assert again.returncode == 1 and b"is not deleted" in again.stderr and b"rollback --to K" in again.stderr
    bare = cli_run("rollback", "team", "--name=TOKEN")
    assert bare.returncode == 2
    assert bare.stderr.decode().splitlines() == [
        "secretstore: error: rollback needs --to K, the version to bring back (1: the one before the current value)",
        "secretstore: hint: list the versions with: secretstore history team --name TOKEN",
    ]
    assert cli_run("rollback", "team", "--name=TOKEN", "--to=2").returncode == 0  # back to the first value
    assert cli_run("get", "team", "--name=TOKEN").stdout == VALUES[0].encode()
    refused = cli_run("rollback", "team", "--name=TOKEN", "--to=0")
    assert refused.returncode == 2 and b"previous version" in refused.stderr


def test_purge_removes_every_version(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "LEAKED", VALUES[0], VALUES[1])
    set_values(cli_run, "KEPT", VALUES[2])
    path = Path(isolated_env["store"]) / "team.toml"
    before = scopefile.parse(path.read_bytes(), "team.toml")
    old_ciphertexts = [v.ciphertext for v in (before.entries["LEAKED"].current, *before.entries["LEAKED"].history)]
    done = cli_run("delete", "team", "--name=LEAKED", "--purge")
    assert done.returncode == 0 and b"every earlier version" in done.stdout
    after = path.read_bytes()
    assert b"LEAKED" not in after
    for ciphertext in old_ciphertexts:
        assert scopefile._b64(ciphertext).encode() not in after
    assert cli_run("undelete", "team", "--name=LEAKED").returncode == 1
    assert cli_run("get", "team", "--name=KEPT").stdout == VALUES[2].encode()


def test_history_values_only_for_recipients(cli_run, isolated_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "TOKEN", VALUES[0], VALUES[1])
    stranger = {"SECRETSTORE_IDENTITY": str(tmp_path / "stranger" / "identity")}
    assert cli_run("init", env=stranger).returncode == 0
    me = cli_run("identity").stdout.decode().strip()
    assert cli_run("trust", me, env=stranger).returncode == 0
    refused = cli_run("get", "team", "--name=TOKEN", "--version=1", env=stranger)
    assert refused.returncode == 1 and b"not a recipient of team" in refused.stderr
    no_value_in(refused.stdout, refused.stderr)


def test_rollback_after_a_removal_is_sealed_to_todays_recipients(cli_run, isolated_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bob = {"SECRETSTORE_IDENTITY": str(tmp_path / "bob" / "identity")}
    bob_key = cli_run("init", env=bob).stdout.decode().strip()
    set_values(cli_run, "TOKEN", VALUES[0])
    assert cli_run("recipients", "add", bob_key, "--label=bob").returncode == 0
    set_values(cli_run, "TOKEN", VALUES[1])
    store = Store(isolated_env["store"])
    from secretstore.identity import load_identity

    bob_identity = load_identity(bob["SECRETSTORE_IDENTITY"])
    kept = store.unlock(TEAM, bob_identity)  # Bob keeps the data key before he is removed
    assert kept is not None
    removed = cli_run("recipients", "remove", bob_key)
    assert removed.returncode == 0
    assert b"could read these secrets" in removed.stderr and b"team: TOKEN" in removed.stderr
    assert cli_run("rollback", "team", "--name=TOKEN", "--to=1").returncode == 0
    assert cli_run("get", "team", "--name=TOKEN").stdout == VALUES[0].encode()
    file = scopefile.parse((Path(isolated_env["store"]) / "team.toml").read_bytes(), "team.toml")
    assert all(PublicKey.decode(s.public_key).box_key != bob_identity.box_key for s in file.recipients)
    entry = file.entries["TOKEN"]
    for version in (entry.current, *entry.history):  # no version opens with the key Bob kept
        assert version is not None
        with pytest.raises(Exception, match="does not decrypt"):
            scopefile.decrypt(file, kept.keys, "TOKEN", version, "team.toml")


def test_offboarding_marks_rotate_needed_until_set_again(cli_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bob = {"SECRETSTORE_IDENTITY": str(tmp_path / "bob" / "identity")}
    bob_key = cli_run("init", env=bob).stdout.decode().strip()
    set_values(cli_run, "TOKEN", VALUES[0])
    set_values(cli_run, "OTHER", VALUES[1])
    assert cli_run("recipients", "add", bob_key).returncode == 0
    assert cli_run("recipients", "remove", bob_key).returncode == 0
    listed = json.loads(cli_run("list", "team", "--json").stdout)
    assert {row["name"]: row["rotate_needed"] for row in listed} == {"OTHER": True, "TOKEN": True}
    assert b"yes" in cli_run("list", "team", "--long").stdout
    doctor = cli_run("doctor").stdout
    assert b"rotate needed (a removed recipient could read them): OTHER, TOKEN" in doctor
    scopes = json.loads(cli_run("scopes", "--json").stdout)
    assert scopes[0]["rotate_needed"] == 2
    set_values(cli_run, "TOKEN", VALUES[2])  # changed at its source and set again
    listed = json.loads(cli_run("list", "team", "--json").stdout)
    assert {row["name"]: row["rotate_needed"] for row in listed} == {"OTHER": True, "TOKEN": False}


def test_a_deleted_name_a_removed_recipient_could_read_is_shown_as_rotate_needed(cli_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A deleted credential may still work where it was issued: doctor and scopes show its mark."""
    bob = {"SECRETSTORE_IDENTITY": str(tmp_path / "bob" / "identity")}
    bob_key = cli_run("init", env=bob).stdout.decode().strip()
    set_values(cli_run, "LIVE", VALUES[0])
    set_values(cli_run, "OLD_KEY", VALUES[1])
    assert cli_run("recipients", "add", bob_key).returncode == 0
    assert cli_run("delete", "team", "--name", "OLD_KEY").returncode == 0
    removed = cli_run("recipients", "remove", bob_key)
    assert removed.returncode == 0 and b"team: LIVE, OLD_KEY" in removed.stderr
    doctor = cli_run("doctor").stdout
    assert b"rotate needed (a removed recipient could read them): LIVE, OLD_KEY (deleted)" in doctor
    assert json.loads(cli_run("scopes", "--json").stdout)[0]["rotate_needed"] == 2
    assert cli_run("delete", "team", "--name", "OLD_KEY", "--purge").returncode == 0  # changed at its source
    assert b"LIVE, OLD_KEY" not in cli_run("doctor").stdout
    assert json.loads(cli_run("scopes", "--json").stdout)[0]["rotate_needed"] == 1


def test_an_old_value_brought_back_keeps_its_rotate_mark(cli_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bob = {"SECRETSTORE_IDENTITY": str(tmp_path / "bob" / "identity")}
    bob_key = cli_run("init", env=bob).stdout.decode().strip()
    set_values(cli_run, "TOKEN", VALUES[0], VALUES[1])
    set_values(cli_run, "GONE", VALUES[2])
    assert cli_run("recipients", "add", bob_key).returncode == 0
    assert cli_run("delete", "team", "--name=GONE").returncode == 0  # deleted while Bob could read it
    assert cli_run("recipients", "remove", bob_key).returncode == 0

    def marks() -> dict[str, bool]:
        return {row["name"]: row["rotate_needed"] for row in json.loads(cli_run("list", "team", "--json").stdout)}

    assert marks() == {"TOKEN": True}
    assert cli_run("undelete", "team", "--name=GONE").returncode == 0  # Bob knows this value
    assert marks() == {"GONE": True, "TOKEN": True}
    assert cli_run("rollback", "team", "--name=TOKEN", "--to=1").returncode == 0  # so he does this one
    assert marks() == {"GONE": True, "TOKEN": True}
    set_values(cli_run, "TOKEN", "fake-v4-delta")  # a new value, from its source
    assert marks() == {"GONE": True, "TOKEN": False}


def test_audit_log_records_reads_and_changes_never_values(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "TOKEN", VALUES[0])
    assert cli_run("get", "team", "--name=TOKEN").returncode == 0
    assert cli_run("exec", "--", "true").returncode == 0
    assert cli_run("export").returncode == 0
    assert cli_run("delete", "team", "--name=TOKEN").returncode == 0
    done = cli_run("audit", "--json")
    rows = json.loads(done.stdout)
    assert [r["command"] for r in rows] == ["set", "get", "exec", "export", "delete"]
    assert all(r["names"] == ["TOKEN"] and r["scope"] == "team" for r in rows)
    me = cli_run("identity").stdout.decode().strip()
    assert all(r["key"] == me for r in rows)
    log = Path(audit.log_path(isolated_env["store"])).read_bytes()
    no_value_in(done.stdout, log, cli_run("audit").stdout)
    assert json.loads(cli_run("audit", "--json", "--name=NOPE").stdout) == []
    assert len(json.loads(cli_run("audit", "--json", "--since=2000-01-01").stdout)) == 5
    assert json.loads(cli_run("audit", "--json", "--since=2999-01-01").stdout) == []
    assert len(json.loads(cli_run("audit", "--json", "--since=1h").stdout)) == 5  # a duration back from now
    assert len(json.loads(cli_run("audit", "--json", "--since=yesterday").stdout)) == 5
    assert cli_run("audit", "--since=1 hour ago").returncode == 2
    assert cli_run("audit", "--verify").returncode == 0
    assert json.loads(cli_run("audit", "--verify", "--json").stdout) == {"ok": True, "files": 1, "problems": []}
    bad_name = cli_run("audit", "--name=not a name")  # was silently "No data found"
    assert bad_name.returncode == 2 and b"invalid secret name" in bad_name.stderr


def test_audit_log_records_who_was_given_or_lost_access_and_whom_you_trust(cli_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Access and trust change what others can read or write: each leaves a line (values never)."""
    bob = {"SECRETSTORE_IDENTITY": str(tmp_path / "bob" / "identity")}
    bob_key = cli_run("init", env=bob).stdout.decode().strip()
    carol_key = cli_run("init", env={"SECRETSTORE_IDENTITY": str(tmp_path / "carol" / "identity")}).stdout.decode().strip()
    set_values(cli_run, "TOKEN", VALUES[0])
    for argv in (("recipients", "add", bob_key), ("rotate", "team"), ("trust", carol_key), ("untrust", carol_key),
                 ("recipients", "remove", bob_key), ("recipients", "remove", carol_key)):
        done = cli_run(*argv)
        assert done.returncode == 0, (argv, done.stderr)
    rows = json.loads(cli_run("audit", "--json").stdout)
    lines = [(r["command"], r["scope"], r["names"], r.get("detail", "")) for r in rows]
    assert lines[1:] == [
        ("recipients add", "team", ["TOKEN"], f"added {bob_key}"),  # what Bob can now read
        ("rotate", "team", [], "new data key"),
        ("trust", "", [], f"trusted {carol_key}"),
        ("untrust", "", [], f"untrusted {carol_key}"),
        ("recipients remove", "team", ["TOKEN"], f"removed {bob_key}; rotate needed"),
        ("recipients remove", "", [], f"removed {carol_key}"),  # she could read nothing: still a line
    ]
    no_value_in(cli_run("audit").stdout)
    assert cli_run("audit", "--verify").returncode == 0


@pytest.mark.parametrize("damage", ["edit", "remove"])
def test_audit_verify_finds_an_edited_or_removed_line(cli_run, isolated_env, damage) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "TOKEN", VALUES[0])
    for _ in range(3):
        cli_run("get", "team", "--name=TOKEN")
    path = Path(audit.log_path(isolated_env["store"]))
    lines = path.read_text().splitlines(keepends=True)
    if damage == "edit":
        lines[1] = lines[1].replace('"get"', '"set"')
    else:
        del lines[2]
    path.write_text("".join(lines))
    done = cli_run("audit", "--verify")
    assert done.returncode == 1 and b"a line was removed or edited" in done.stdout
    as_json = cli_run("audit", "--verify", "--json")  # --json was ignored here
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and report["ok"] is False and report["files"] == 1
    assert any("a line was removed or edited" in p for p in report["problems"])
    # a damaged log never breaks a command
    assert cli_run("get", "team", "--name=TOKEN").stdout == VALUES[0].encode()


def test_a_low_order_key_is_refused_as_a_recipient(cli_run) -> None:  # type: ignore[no-untyped-def]
    set_values(cli_run, "TOKEN", VALUES[0])
    _public, secret = crypto.new_keypair()
    sign_key = crypto.signing_keypair(secret)[0]
    for weak in (encode_key("ssk2", bytes(32) + sign_key), encode_key("ssk1", bytes(32))):
        done = cli_run("recipients", "add", weak)
        assert done.returncode == 2 and b"weak (low-order) key" in done.stderr
        assert b"internal error" not in done.stderr


# --- two people's histories in git ------------------------------------------------------------


pytestmark_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytestmark_git
def test_two_peoples_histories_merge_and_undelete_after_a_merge(tmp_path) -> None:  # type: ignore[no-untyped-def]
    people = team_of(tmp_path, ("alice", "bob"))
    alice, bob = people["alice"], people["bob"]
    assert isinstance(alice, Person) and isinstance(bob, Person)
    alice.ss("set", "team", "--name=A", "--value=fake-a1")
    alice.ss("set", "team", "--name=GONE", "--value=fake-gone")
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.publish("start")
    bob.clone(people["origin"])  # type: ignore[arg-type]
    bob.ss("trust", alice.key)
    # at the same time: Alice changes A twice and deletes GONE; Bob changes B and A's neighbour
    alice.ss("set", "team", "--name=A", "--value=fake-a2")
    alice.ss("set", "team", "--name=A", "--value=fake-a3")
    alice.ss("delete", "team", "--name=GONE")
    alice.git("commit", "-q", "-am", "alice")
    bob.ss("set", "team", "--name=B", "--value=fake-b1")
    bob.ss("set", "team", "--name=B", "--value=fake-b2")
    bob.publish("bob")
    merged = alice.pull("--no-rebase")
    assert "CONFLICT" not in merged.stdout + merged.stderr
    a_rows = json.loads(alice.ss("history", "team", "--name=A", "--json").stdout)
    b_rows = json.loads(alice.ss("history", "team", "--name=B", "--json").stdout)
    assert len(a_rows) == 3 and len(b_rows) == 2
    assert b_rows[0]["writer"] == bob.key and a_rows[0]["writer"] == alice.key
    assert alice.ss("get", "team", "--name=B", "--version=1").stdout == "fake-b1"
    alice.ss("undelete", "team", "--name=GONE")  # after the merge
    assert alice.ss("get", "team", "--name=GONE").stdout == "fake-gone"
    alice.git("commit", "-q", "-am", "undelete")
    alice.git("push", "-q", "origin", "HEAD:main")
    bob.pull("--no-rebase")
    assert bob.ss("get", "team", "--name=GONE").stdout == "fake-gone"
    assert bob.ss("get", "team", "--name=A", "--version=2").stdout == "fake-a1"


# --- a writer never reads the history it carries over --------------------------------------------


@pytest.fixture
def me(isolated_env: dict[str, str]) -> Identity:
    from secretstore.identity import resolve_identity

    return resolve_identity(create=True)[0]



def _store_with_history(isolated_env: dict[str, str], me: Identity) -> tuple[Store, Path]:
    store = Store(isolated_env["store"])
    for round_ in range(3):
        store.set_many(TEAM, {f"NAME_{i:02d}": f"fake-{i}-v{round_}" for i in range(20)}, me)
    return store, Path(store.path(TEAM))


def test_a_write_reads_the_file_only_up_to_its_history(
    isolated_env: dict[str, str], me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 3: set reads the current entries and copies the earlier versions of the names it
    does not change file to file (copy_file_range): the history is never read into memory,
    which is most of a large scope's file (FORMAT.md "Scope file, version 3")."""
    monkeypatch.setattr(scopefile, "WRITE_FORMAT", scopefile.FORMAT_V3)
    store, path = _store_with_history(isolated_env, me)
    before = path.read_bytes()
    history_start = before.index(scopefile.BODY_END)
    returned: list[int] = []
    real_read = fsio.read_store_file

    def counting(*args: object, **kwargs: object) -> bytes | None:
        data = real_read(*args, **kwargs)  # type: ignore[arg-type]
        returned.append(0 if data is None else len(data))
        return data

    with monkeypatch.context() as spying:
        spying.setattr(fsio, "read_store_file", counting)
        spying.setattr(fsio.OpenFile, "pread", lambda *_args: pytest.fail("read history it does not change"))
        store.set(TEAM, "ADDED", "fake-added", me)
    assert returned and max(returned) <= history_start  # the bytes returned stop where the history starts
    after = path.read_bytes()
    assert after[after.index(scopefile.BODY_END):] == before[history_start:]  # carried over byte for byte
    assert [Store(isolated_env["store"]).get_version(TEAM, "NAME_07", number, me) for number in (1, 2)] == [
        "fake-7-v1", "fake-7-v0"]


def test_an_appended_set_reads_no_history_and_leaves_every_byte_before_it(
    isolated_env: dict[str, str], me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 4: set of one name reads the current entries and the sections after the history,
    never the history (28 MB of a 31 MB file at 10,000 names with 10 versions each) but that
    name's own earlier versions, and
    appends a section: the file's bytes before it are not written again."""
    store, path = _store_with_history(isolated_env, me)
    store.set(TEAM, "NAME_01", "fake-1-v3", me)  # a section already there, to be read
    before = path.read_bytes()
    history = (before.index(scopefile.BODY_END), before.index(b"\n[[seals]]\n"))
    assert history[1] - history[0] > 10_000  # the history region
    reads: list[tuple[int, int]] = []
    real_pread = fsio.OpenFile.pread

    def spying(self: fsio.OpenFile, offset: int, length: int) -> bytes:
        reads.append((offset, offset + length))
        return real_pread(self, offset, length)

    with monkeypatch.context() as spied:
        spied.setattr(fsio.OpenFile, "pread", spying)
        store.set(TEAM, "ADDED", "fake-added", me)
        store.set(TEAM, "NAME_02", "fake-2-v3", me)
    chunk = scopefile.parse(before, "team.toml").entries["NAME_02"].chunk
    assert chunk is not None  # NAME_02's earlier versions, the one chunk of the history a write reads
    own = (chunk.offset, chunk.offset + chunk.length)
    assert reads and all(end <= history[0] or start >= history[1] or (start, end) == own for start, end in reads), reads
    assert own in reads
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n[[seals]]\n") == 4
    fresh = Store(isolated_env["store"])
    assert [fresh.get_version(TEAM, "NAME_02", number, me) for number in (0, 1, 2)] == [
        "fake-2-v3", "fake-2-v2", "fake-2-v1"]
    assert fresh.get(TEAM, "ADDED", me) == "fake-added"


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_carried_history_is_the_same_with_or_without_copy_file_range(
    isolated_env: dict[str, str], me: Identity, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool
) -> None:
    """Where copy_file_range is missing or refuses (another file system, an old kernel), the
    history is copied through memory, 1 MiB at a time, to the same bytes."""
    import errno

    store, path = _store_with_history(isolated_env, me)
    if not kernel_copy:
        def refuse(*_args: object) -> int:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    before = path.read_bytes()
    store.set(TEAM, "NAME_03", "fake-3-v3", me)
    after = path.read_bytes()
    assert scopefile.parse(after, "team.toml").entries["NAME_04"].history == scopefile.parse(
        before, "team.toml").entries["NAME_04"].history
    assert store.get_version(TEAM, "NAME_03", 1, me) == "fake-3-v2"
    assert store.get_version(TEAM, "NAME_19", 2, me) == "fake-19-v0"


def test_a_file_cut_short_while_a_write_copies_it_writes_nothing(
    isolated_env: dict[str, str], me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program truncating the scope file in place between the read of its entries
    and the copy of its history: the write fails with one line and leaves the file as that
    program left it, with no temp file beside it (version 3, whose one-name write copies it)."""
    monkeypatch.setattr(scopefile, "WRITE_FORMAT", scopefile.FORMAT_V3)
    store, path = _store_with_history(isolated_env, me)
    data = path.read_bytes()
    real_write_all = fsio._write_all

    def truncate_first(fd: int, parts: fsio.Data) -> None:
        with open(path, "r+b") as handle:  # in place: the same inode the writer holds open
            handle.truncate(len(data) - 100)
        real_write_all(fd, parts)

    monkeypatch.setattr(fsio, "_write_all", truncate_first)
    with pytest.raises(SecretStoreError, match="was cut short while it was read; run the command again"):
        store.set(TEAM, "ADDED", "fake-added", me)
    assert path.read_bytes() == data[: len(data) - 100]
    assert sorted(os.listdir(path.parent)) == ["team.toml"]


def test_a_command_holding_many_scopes_reads_the_rest_whole(
    isolated_env: dict[str, str], me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files kept open for their history are capped (``fsio.OpenFile.MAX_OPEN``): a command that
    unlocks every scope of a large store at once (rotate, recipients add) reads the files past
    the cap whole instead of running out of descriptors, with the same result."""
    monkeypatch.setattr(fsio.OpenFile, "MAX_OPEN", 2)
    store = Store(isolated_env["store"])
    projects = [Scope("project", f"prj{i}") for i in range(5)]
    for scope in projects:
        store.set(scope, "DB", "fake-old", me)
        store.set(scope, "DB", "fake-new", me)
    held = [store.unlock(scope, me) for scope in projects]
    assert len(fsio.OpenFile._open) <= 2
    assert [each.file.entries["DB"].history[0].updated != "" for each in held if each is not None] == [True] * 5
    assert [store.get_version(scope, "DB", 1, me) for scope in projects] == ["fake-old"] * 5
    report = store.rotate(None, me)
    assert sorted(s.scope_id or "" for s in report.changed) == [f"prj{i}" for i in range(5)]
    assert [store.get_version(scope, "DB", 1, me) for scope in projects] == ["fake-old"] * 5


def test_finding_a_stores_signers_reads_only_the_start_of_each_file(
    isolated_env: dict[str, str], me: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'This store holds files written by ...' (the first read of an untrusted store) names each
    file's signer from its first 64 KiB: a scope's history is never read for it."""
    from secretstore import limits

    store, _path = _store_with_history(isolated_env, me)
    calls: list[object] = []
    real_read = fsio.read_store_file

    def spying(root: str, relpath: str, *args: object, **kwargs: object) -> bytes | None:
        calls.append(kwargs.get("prefix"))
        return real_read(root, relpath, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fsio, "read_store_file", spying)
    assert store.signers() == {me.public_text: ""}
    assert calls and set(calls) == {limits.SIGNER_BYTES}


# --- rollback and undelete of the version the caller means ----------------------------------------


def _tag_of(store: Store, name: str, number: int) -> str:
    """The ``version_tag`` of version ``number`` of ``name`` as the team file says now."""
    from secretstore.store import version_tag

    file = store.load(TEAM)
    assert file is not None
    entry = file.entries[name]
    version = [entry.current, *reversed(entry.history)][number]
    assert version is not None
    return version_tag(version)


@pytest.mark.parametrize("spliced", [True, False], ids=["spliced", "whole-file"])
@pytest.mark.parametrize("what", ["rollback", "undelete"])
def test_rollback_and_undelete_restore_only_the_expected_version(
    isolated_env: dict[str, str], me: Identity, monkeypatch: pytest.MonkeyPatch, what: str, spliced: bool
) -> None:
    """``expected`` (the version a user confirmed) is checked under the store lock, in the write:
    another version there is VersionChangedError (one line, no value) and nothing is written;
    the version it names is restored; without it (the CLI) whatever version K is now. The same
    whether the write splices one entry or reads and writes the whole file."""
    from secretstore.errors import VersionChangedError

    if not spliced:
        monkeypatch.setattr(Store, "_splice", lambda *_args: None)
    store = Store(isolated_env["store"])
    path = Path(store.path(TEAM))

    def restore(expected: str | None) -> None:
        if what == "rollback":
            store.rollback(TEAM, "TOKEN", 1, me, expected=expected)
        else:
            store.undelete(TEAM, "TOKEN", me, expected=expected)

    def change(value: str) -> None:  # another writer: version 1 becomes another one
        store.set(TEAM, "TOKEN", value, me)
        if what == "undelete":
            store.delete(TEAM, "TOKEN", me)

    store.set(TEAM, "TOKEN", "fake-first", me)
    change("fake-second")
    stale = _tag_of(store, "TOKEN", 1)  # "fake-first" for a rollback, "fake-second" for an undelete
    change("fake-third")
    before, versions = path.read_bytes(), store.versions(TEAM, "TOKEN")
    with pytest.raises(VersionChangedError) as refused:
        restore(stale)
    message = str(refused.value)
    assert message == ("version 1 of team secret 'TOKEN' is no longer the one expected "
                       "(it changed since it was read): nothing was changed")
    assert "\n" not in message and "fake-" not in message and "fake-" not in (refused.value.hint or "")
    with pytest.raises(VersionChangedError):
        restore("")  # a caller that saw no such version
    assert path.read_bytes() == before and store.versions(TEAM, "TOKEN") == versions  # nothing written
    restore(_tag_of(store, "TOKEN", 1))  # the version there now, named: restored
    restored = "fake-second" if what == "rollback" else "fake-third"
    assert store.get(TEAM, "TOKEN", me) == restored
    # without ``expected`` (the CLI) the version there now is restored, as before
    change("fake-fourth")  # version 1 is now "fake-second" again (a rollback), or "fake-fourth"
    restore(None)
    assert store.get(TEAM, "TOKEN", me) == ("fake-second" if what == "rollback" else "fake-fourth")


def test_an_expected_version_does_not_change_the_refusals_in_the_clis_words(
    isolated_env: dict[str, str], me: Identity
) -> None:
    """A version that is not kept, or a name that is not deleted, is refused as without ``expected``."""
    store = Store(isolated_env["store"])
    store.set(TEAM, "TOKEN", "fake-a", me)
    store.set(TEAM, "TOKEN", "fake-b", me)
    tag = _tag_of(store, "TOKEN", 1)
    with pytest.raises(SecretStoreError, match=r"has no version 5 \(versions 0 to 1 are kept\)"):
        store.rollback(TEAM, "TOKEN", 5, me, expected=tag)
    with pytest.raises(SecretStoreError, match="is not deleted: it has a current value"):
        store.undelete(TEAM, "TOKEN", me, expected=tag)
    assert store.get(TEAM, "TOKEN", me) == "fake-b"


@pytest.mark.parametrize("argv", [["history", "project", "--name=TOKEN"], ["rotate", "cluster"],
                                  ["accept-revert", "project"], ["rollback", "cluster", "--name=X", "--to=1"]])
def test_a_missing_id_hint_does_not_name_another_command(cli_run, argv) -> None:  # type: ignore[no-untyped-def]
    # The hint said "e.g. secretstore set project --id=ID ..." whatever the command was.
    set_values(cli_run, "TOKEN", VALUES[0])
    done = cli_run(*argv)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "secrets need --id" in err and "secretstore set" not in err
    assert "'secretstore scopes' lists the ids" in err
