"""``set`` of one name splices its entry into a version-3 file (``scopefile.Splice``) instead
of parsing every entry and writing them all again. These tests hold the spliced file to the
full writer: the same layout byte for byte, the same values and history, the same checks
before anything is written, and the full path whenever the splice cannot be sure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretstore import limits, scopefile
from secretstore.errors import TamperedError
from secretstore.identity import Identity
from secretstore.scopefile import Entry
from secretstore.store import DEFAULT_HISTORY, TEAM, Store

NAMES = ("A", "B", "M", "Z", "a_1", "ZZ")


@pytest.fixture(autouse=True)
def _version_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """The splice is version 3's (a version-4 file gets a section appended instead: the
    full writer here writes version 3, as 0.2's did, so every file below is one to splice)."""
    monkeypatch.setattr(scopefile, "WRITE_FORMAT", scopefile.FORMAT_V3)


class Spy:
    """Counts the writes (a set or delete of one name) the splice took and those it left to the
    full path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = self.declined = 0
        real = Store._splice

        def spied(store: Store, *args: object) -> str | None:
            done = real(store, *args)  # type: ignore[arg-type]
            if done is None:
                self.declined += 1
            else:
                self.taken += 1
            return done

        monkeypatch.setattr(Store, "_splice", spied)
        parts = scopefile.Splice.parts

        def sized(site: scopefile.Splice, new: Entry | None, sign):  # type: ignore[no-untyped-def]
            out = parts(site, new, sign)
            assert site.size(new) == sum(len(part) for part in out)  # what the cap is checked against
            return out

        monkeypatch.setattr(scopefile.Splice, "parts", sized)


def written_anew(data: bytes) -> bytes:
    """The file as the full writer writes it from a full parse, every entry and chunk serialised
    again (none reused as read), under the signature and MAC it has."""
    file = scopefile.parse(data, "team.toml")
    file.entries = {name: Entry(e.current, e.updated, e.history, e.writer, e.rotate)
                    for name, e in file.entries.items()}
    mac, signature = file.mac, file.signature
    return scopefile.serialize_v3(file, lambda digest: (mac, signature))


def file_bytes(store: Store) -> bytes:
    return Path(store.path(TEAM)).read_bytes()


def check(store: Store, me: Identity, model: dict[str, list[str | None]]) -> None:
    """The file is canonical and holds what ``model`` says: per name its versions, oldest first
    (None: deleted), as many earlier ones as the store keeps."""
    data = file_bytes(store)
    assert written_anew(data) == data
    assert store.read(TEAM, me) == {name: v[-1] for name, v in model.items() if v[-1] is not None}
    for name, versions in model.items():
        kept = [v for v in versions[:-1] if v is not None][-DEFAULT_HISTORY:]
        found = store.versions(TEAM, name, me.public)
        assert len(found) == 1 + len(kept), name
        for number, value in enumerate(reversed(kept), start=1):
            assert store.get_version(TEAM, name, number, me) == value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 3)), min_size=1, max_size=12),
    ops=st.lists(st.tuples(st.sampled_from(["set", "set", "set", "delete", "purge", "rollback", "undelete"]),
                           st.sampled_from(NAMES),
                           st.integers(0, 5)), min_size=1, max_size=14),
)
def test_a_spliced_set_writes_what_the_full_writer_writes(
    seed: list[tuple[str, int]], ops: list[tuple[str, str, int]], tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store(str(tmp_path_factory.mktemp("store")))
    me = Identity.generate("test")
    model: dict[str, list[str | None]] = {}
    store.set_many(TEAM, {name: f"fake-{name}-seed{n}" for name, n in seed}, me)  # the full path: two or more
    for name, n in dict(seed).items():
        model[name] = [f"fake-{name}-seed{n}"]
    with monkeypatch.context() as patched:
        spy = Spy(patched)
        sets = declined = 0
        for step, (op, name, n) in enumerate(ops):
            versions = model.get(name, [])
            earlier = [v for v in versions[:-1] if v is not None]
            if op in ("rollback", "undelete"):  # to version 1: the value before the current one
                if not earlier or (versions[-1] is None) != (op == "undelete"):
                    continue
                if op == "rollback":
                    store.rollback(TEAM, name, 1, me)
                else:
                    store.undelete(TEAM, name, me)
                versions.append(earlier[-1])
                sets += 1
            elif op == "purge":
                if name not in model:
                    continue
                declined += len(model) == 1  # the last entry: the full writer writes "[secrets]"
                store.delete(TEAM, name, me, purge=True)
                del model[name]
                sets += 1
            elif op == "delete":
                if model.get(name, [None])[-1] is None:
                    continue
                store.delete(TEAM, name, me)
                model[name].append(None)
                sets += 1
            else:
                value = f"fake-{name}-{n}"
                declined += not model  # into a file with no entry ("[secrets]"): the full writer's
                created = store.set(TEAM, name, value, me)
                versions = model.setdefault(name, [])
                assert created == (not versions or versions[-1] is None), step
                if not versions or versions[-1] != value:
                    versions.append(value)
                sets += 1
            check(store, me, model)
        assert (spy.taken, spy.declined) == (sets - declined, declined)  # every other one spliced


def test_a_one_name_set_through_the_console_script_appends(cli_run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    """Through the console script (version 4, which it writes): the first set writes the file,
    each later one appends a section, and an unchanged value writes nothing."""
    for args in (["--name=B", "--value=fake-b1"], ["--name=A", "--value=fake-a1"], ["--name=C", "--value=fake-c1"],
                 ["--name=B", "--value=fake-b2"], ["--name=B", "--value=fake-b3"], ["--name=A", "--value=fake-a2"]):
        done = cli_run("set", "team", *args)
        assert done.returncode == 0, done.stderr
    data = (Path(isolated_env["store"]) / "team.toml").read_bytes()
    assert data.startswith(scopefile.V4_START) and data.count(b"\n[[seals]]\n") == 6
    assert cli_run("get", "team", "--name=B", "--version=2").stdout == b"fake-b1"
    assert cli_run("get", "team", "--name=A", "--version=1").stdout == b"fake-a1"
    assert cli_run("list", "team").stdout.decode().split() == ["+------+", "|", "Name", "|", "+------+",
                                                                "|", "A", "|", "|", "B", "|", "|", "C", "|",
                                                                "+------+"]
    unchanged = cli_run("set", "team", "--name=B", "--value=fake-b3")
    assert unchanged.returncode == 0 and b"already had this value; nothing was written" in unchanged.stderr
    assert (Path(isolated_env["store"]) / "team.toml").read_bytes() == data


def test_a_byte_edited_in_another_entry_is_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The splice carries the other entries unparsed, so it must verify them first: the signature
    over the digest of every byte it carries (this fails if it skips ``unlock_file``)."""
    store = Store(str(tmp_path / "store"))
    me = Identity.generate("test")
    store.set_many(TEAM, {"A": "fake-a", "B": "fake-b", "C": "fake-c"}, me)
    path = Path(store.path(TEAM))
    data = path.read_bytes()
    at = data.index(b'ciphertext = "', data.index(b"[secrets.C]")) + len(b'ciphertext = "')
    edited = data[:at] + (b"B" if data[at:at + 1] != b"B" else b"C") + data[at + 1:]
    path.write_bytes(edited)
    spy = Spy(monkeypatch)
    with pytest.raises(TamperedError, match="signature does not match"):
        store.set(TEAM, "A", "fake-a2", me)
    assert path.read_bytes() == edited
    assert spy.declined == 0  # refused by the splice's own check, not by the full path after it


def test_a_file_near_the_size_cap_is_left_to_the_full_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The full writer drops the oldest versions to fit under the cap, and says so."""
    store = Store(str(tmp_path / "store"))
    me = Identity.generate("test")
    for n in range(6):
        store.set(TEAM, "A", f"fake-a{n}-" + "x" * 200, me)
    monkeypatch.setattr(limits, "MAX_SCOPE_FILE_BYTES", os.path.getsize(store.path(TEAM)) + 100)
    spy = Spy(monkeypatch)
    store.set(TEAM, "A", "fake-a6-" + "x" * 200, me)
    assert (spy.taken, spy.declined) == (0, 1)
    assert "kept 5 earlier version(s) per name" in capsys.readouterr().err
    assert os.path.getsize(store.path(TEAM)) <= limits.MAX_SCOPE_FILE_BYTES


def test_other_files_take_the_full_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No file yet, and a file with no entries ("[secrets]"), are the full writer's."""
    store = Store(str(tmp_path / "store"))
    me = Identity.generate("test")
    spy = Spy(monkeypatch)
    store.set(TEAM, "A", "fake-a", me)  # no file yet
    store.delete(TEAM, "A", me, purge=True)  # no entries left
    assert b"\n[secrets]\n" in file_bytes(store)
    store.set(TEAM, "B", "fake-b", me)
    store.set(TEAM, "C", "fake-c", me)  # this one splices
    assert (spy.taken, spy.declined) == (1, 3)
    assert store.read(TEAM, me) == {"B": "fake-b", "C": "fake-c"}


@pytest.mark.parametrize("where", [0, 5, (1 << 20) - 11, (1 << 20) - 5, (1 << 20) - 1, 1 << 20, (1 << 20) + 3,
                                   (3 << 20) - 6])
def test_reading_up_to_the_history_stops_exactly_at_it(where: int, tmp_path: Path) -> None:
    """``until`` reads 1 MiB at a time: the history's first bytes may fall in one read or
    straddle two; what comes back is the file up to them, never a byte more or less."""
    from secretstore import fsio

    root = tmp_path / "store"
    root.mkdir(mode=0o700)
    marker = scopefile.BODY_END
    data = bytes(97 + n % 26 for n in range(where)) + marker + b"x" * 4096
    (root / "team.toml").write_bytes(data)
    os.chmod(root / "team.toml", 0o600)
    kept: list[fsio.OpenFile] = []
    assert fsio.read_store_file(str(root), "team.toml", until=marker, keep=kept) == data[:where]
    assert len(kept) == 1 and kept[0].size == len(data)
    kept[0].close()
    assert fsio.read_store_file(str(root), "team.toml", until=b"not there") == data
