"""Size caps and pathological shapes: refused before any TOML parser runs, each in one linear pass.

Every refusal goes through the real console script with a generous timeout
(no timing assertion): before the checks, the deep-key file alone made
``list`` run for minutes (tomllib is quadratic there).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import fsio, limits, recipients, scopefile
from secretstore.errors import StoreFormatError, TamperedError
from secretstore.limits import (
    MAX_HEADER_LINE_BYTES,
    MAX_HEADER_PARTS,
    MAX_KEY_PART_BYTES,
    MAX_LINE_BYTES,
    MAX_LINES,
    check_store_file_shape,
)

HEAD = b'format = "secretstore/v1"\nentity = "team"\n'
ARRAY_VALUE = "an array or inline table value"


def deep_keys(size: int = 400_000, depth: int = 200) -> bytes:
    """The shape that made tomllib take about 150 s: dotted keys under deep dotted headers."""
    path = ".".join("a" for _ in range(depth))
    out, n = [HEAD], 0
    while sum(map(len, out)) < size:
        out.append(f"[{path}.b{n}]\nx.{path} = 1\n".encode())
        n += 1
    return b"".join(out)


# name -> (file bytes, what the one-line error says)
CRAFTED: dict[str, tuple[Callable[[], bytes], str]] = {
    "deep-dotted-keys": (deep_keys, f"a table header of more than {MAX_HEADER_PARTS} dotted parts"),
    "dotted-keys": (lambda: HEAD + b"[secrets.A]\n" + b"x.y = 1\n" * 1000, "a dotted key (a.b = ...)"),
    "deep-dotted-keys-long-headers": (lambda: deep_keys(depth=600),
                                      f"a table header line longer than {MAX_HEADER_LINE_BYTES} bytes"),
    "deep-header": (lambda: HEAD + b"[" + b".".join([b"s"] * 5) + b"]\n",
                    f"a table header of more than {MAX_HEADER_PARTS} dotted parts"),
    "long-line": (lambda: HEAD + b'mac = "' + b"A" * MAX_LINE_BYTES + b'"\n', "a line longer than 96 KiB"),
    "long-header": (lambda: HEAD + b"[secrets." + b"N" * MAX_HEADER_LINE_BYTES + b"]\n",
                    f"a table header line longer than {MAX_HEADER_LINE_BYTES} bytes"),
    "long-key": (lambda: HEAD + b"k" * (MAX_KEY_PART_BYTES + 1) + b' = "x"\n',
                 f"a key part longer than {MAX_KEY_PART_BYTES} bytes"),
    "long-quoted-key": (lambda: HEAD + b'"' + b"k" * (MAX_KEY_PART_BYTES + 1) + b'" = "x"\n',
                        f"a key part longer than {MAX_KEY_PART_BYTES} bytes"),
    "too-many-lines": (lambda: HEAD + b"\n" * MAX_LINES, "(more than one per 16 bytes)"),
    "nested": (lambda: HEAD + b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", ARRAY_VALUE),
    "int-array": (lambda: HEAD + b"[secrets.A]\nx = [" + b"1," * 40_000 + b"]\n", ARRAY_VALUE),
    "inline-table": (lambda: HEAD + b"x = { a = 1 }\n", ARRAY_VALUE),
    "huge-integer": (lambda: HEAD + b"x = " + b"7" * 5000 + b"\n", "a number too long to read"),
}


@pytest.fixture
def team_file(isolated_env: dict[str, str], cli_run) -> Path:
    assert cli_run("set", "team", "--name=KEEP", "--value=fake-keep").returncode == 0
    return Path(isolated_env["store"], "team.toml")


def replace(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def one_line_error(done, where: str, what: str) -> None:  # type: ignore[no-untyped-def]
    err = done.stderr.decode()
    assert done.returncode == 1, err
    first = err.splitlines()[0]
    assert first.startswith("secretstore: error: ") and where in first and what in first, err
    assert "Traceback" not in err and len(err.splitlines()) <= 2


@pytest.mark.parametrize("case", sorted(CRAFTED))
@pytest.mark.parametrize("command", [["list", "team"], ["get", "team", "--name=KEEP"], ["exec", "--", "true"]],
                         ids=["list", "get", "exec"])
def test_crafted_scope_file_is_refused_by_every_reader(team_file: Path, cli_run, case: str,
                                                        command: list[str]) -> None:
    make, what = CRAFTED[case]
    replace(team_file, make())
    done = cli_run(*command, env={"SECRETSTORE_CACHE": "0"}, timeout=120)
    one_line_error(done, "team.toml", what)


@pytest.mark.parametrize("case", ["deep-dotted-keys", "long-line", "huge-integer"])
def test_crafted_file_is_refused_by_the_merge_driver(team_file: Path, cli_run, tmp_path: Path,
                                                     case: str) -> None:
    good = team_file.read_bytes()
    ours, base, theirs = (tmp_path / name for name in ("ours", "base", "theirs"))
    base.write_bytes(good)
    ours.write_bytes(good)
    theirs.write_bytes(CRAFTED[case][0]())
    done = cli_run("git", "merge-driver", str(base), str(ours), str(theirs), "team.toml", timeout=120)
    one_line_error(done, "team.toml (theirs)", CRAFTED[case][1])
    assert ours.read_bytes() == good  # nothing written


def test_an_oversized_side_is_named_as_the_file_not_gits_temp_file(team_file: Path, cli_run, tmp_path: Path) -> None:
    good = team_file.read_bytes()
    ours, base, theirs = (tmp_path / name for name in (".merge_file_ours", ".merge_file_base", ".merge_file_theirs"))
    base.write_bytes(good)
    ours.write_bytes(good)
    with theirs.open("wb") as handle:
        handle.write(good + b"# " + b"A" * 70_000_000 + b"\n")
    done = cli_run("git", "merge-driver", str(base), str(ours), str(theirs), "team.toml", timeout=120)
    one_line_error(done, "team.toml (theirs) is larger than 64 MiB", "")
    assert ".merge_file" not in done.stderr.decode()
    assert ours.read_bytes() == good


def test_a_70_mb_scope_file_is_refused_without_reading_it(team_file: Path, cli_run) -> None:
    with team_file.open("ab") as handle:  # a 70 MB "value" appended to a valid file
        handle.write(b'# ' + b"A" * 70_000_000 + b"\n")
    for command in (["list", "team"], ["get", "team", "--name=KEEP"], ["exec", "--", "true"]):
        done = cli_run(*command, timeout=120)
        one_line_error(done, str(team_file), "is larger than 64 MiB")


def test_a_big_file_is_never_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"x" * 1000)
    read: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        chunk = real_read(fd, size)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(StoreFormatError, match="larger than 100 bytes"):
        fsio.read_file(str(big), max_bytes=100)
    assert read == []  # refused from its size alone
    assert fsio.read_file(str(big), max_bytes=1000) == b"x" * 1000
    assert sum(read) == 1000


def test_recipients_file_caps(isolated_env: dict[str, str], cli_run) -> None:
    assert cli_run("set", "team", "--name=KEEP", "--value=fake-keep").returncode == 0
    path = Path(isolated_env["store"], "recipients.toml")
    cases = {
        b'format = "secretstore-recipients/v1"\n' + b"# " + b"x" * 90_000 + b"\n" * 200: "larger than 256 KiB",
        b'format = "secretstore-recipients/v1"\nx = ' + b"9" * 5000 + b"\n": "a number too long to read",
        b'format = "secretstore-recipients/v1"\n' + b"a." * 6 + b"b = 1\n": "a dotted key (a.b = ...)",
    }
    for data, what in cases.items():
        replace(path, data * (3 if what.startswith("larger") else 1))
        one_line_error(cli_run("recipients", "list", timeout=120), "recipients.toml", what)
        one_line_error(cli_run("set", "project", "--id=fresh", "--name=NEW", "--value=fake", timeout=120),
                       "recipients.toml", what)


def test_dotfile_caps(isolated_env: dict[str, str], cli_run, tmp_path: Path) -> None:
    assert cli_run("set", "team", "--name=KEEP", "--value=fake-keep").returncode == 0
    work = tmp_path / "work"
    work.mkdir()
    dotfile = work / ".secretstore.toml"
    import subprocess

    from tests.conftest import console_script

    for data, what in {
        b'project = "p1"\n' + b"# filler\n" * 10_000: "is larger than 64 KiB",
        b"[a.b.c.d.e]\n": "a table header of more than 4 dotted parts",
    }.items():
        dotfile.write_bytes(data)
        done = subprocess.run([console_script(), "exec", "--", "true"], cwd=work, capture_output=True,
                              timeout=120, check=False)
        assert done.returncode != 0
        err = done.stderr.decode()
        assert err.startswith("secretstore: error: ") and ".secretstore.toml" in err and what in err, err
        assert "Traceback" not in err


# --- the check itself, at its boundaries -------------------------------------------


def test_a_canonical_file_and_its_reference_parse_pass(tmp_path: Path, cli_run, isolated_env) -> None:
    assert cli_run("set", "team", "--name=KEEP", "--value=fake-keep").returncode == 0
    data = Path(isolated_env["store"], "team.toml").read_bytes()
    check_store_file_shape(data, "team.toml")
    # The same file reformatted (comments, blank lines) passes the shape check and the TOML
    # parser; as version 3 signs bytes, it is then refused as not what its writer signed.
    spaced = data.replace(b"\n[", b"\n# a comment with dots a.b.c.d.e.f\n\n[")
    check_store_file_shape(spaced, "team.toml")
    assert scopefile.parse_canonical(spaced) is None
    with pytest.raises(TamperedError, match="the signature does not cover the file as it is"):
        scopefile.parse(spaced, "team.toml")


@pytest.mark.parametrize(("text", "ok"), [
    (b"[secrets.A.history.x]\n", True),                       # 4 parts: the cap
    (b"[secrets.A.history.x.y]\n", False),
    (b"[[ secrets . A . history . x . y ]]\n", False),        # blanks around dots
    (b'["a.b.c.d.e.f"]\n', True),                              # one quoted part
    (b'["a"."b"."c"."d"]\n', True),
    (b'["a"."b"."c"."d".e]\n', False),
    (b'"a.b.c" = 1\n', True),                                  # one quoted part
    (b'"a" . "b" = 1\n', False),                               # a dotted key
    (b"'a'.'b' = 1\n", False),
    (b"a.b = 1\n", False),
    (b'label = "a.b.c.d.e.f.g"\n', True),                     # dots in a value are not a key
    (b'x = { a.b.c = 1 }\n', False),                          # an inline table value
    (b"# a.b.c.d.e = 1\n", True),                             # a comment
    (b"  a.b = 1\n", False),                                   # indented
    (b"a.b = 1", False),                                       # first and only line, no newline
    (b"x = 1\na.b = 1", False),                                # last line, no newline
    (b"k" * MAX_KEY_PART_BYTES + b" = 1\n", True),
    (b"[a] #" + b"c" * (MAX_HEADER_LINE_BYTES - 5) + b"\n", True),   # a header line of 512 bytes
    (b"[a] #" + b"c" * (MAX_HEADER_LINE_BYTES - 4) + b"\n", False),
    (b"deleted = true\n", True),
    (b"x = false  # a comment\n", True),
    (b"x = 's'\n", True),
    (b'x = """s"""\n', True),
    (b"x = 1\n", True),
    (b"x = [1]\n", False),
    (b"x =[]\n", False),
    (b"  x = {a = 1}\n", False),
    (b'"quoted" = [1]\n', False),
    (b"x = 1979-05-27\n", True),
    (b'x = "[not an array]"\n', True),
    (b"x = \"" + b"y" * (MAX_LINE_BYTES - 6) + b"\"\n", True),  # exactly MAX_LINE_BYTES
    (b"x = \"" + b"y" * (MAX_LINE_BYTES - 5) + b"\"\n", False),
])
def test_shape_rules_at_their_boundaries(text: bytes, ok: bool) -> None:
    if ok:
        check_store_file_shape(text, "f.toml")
    else:
        with pytest.raises(StoreFormatError):
            check_store_file_shape(text, "f.toml")


def test_the_error_names_the_line() -> None:
    data = b"a = 1\n\n\n[b.c.d.e.f]\n"
    with pytest.raises(StoreFormatError) as info:
        check_store_file_shape(data, "f.toml")
    assert info.value.message.startswith("f.toml, line 4: a table header of more than 4 dotted parts")
    long_third = b"a\nb\n" + b"c" * (MAX_LINE_BYTES + 1) + b"\nd\n"
    with pytest.raises(StoreFormatError) as info:
        check_store_file_shape(long_third, "f.toml")
    assert info.value.message.startswith("f.toml, line 3: a line longer than 96 KiB")


@pytest.mark.parametrize("length", [1, 2, 1000, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, 3 * MAX_LINE_BYTES])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_long_line_search_is_exact(length: int, where: str) -> None:
    filler = b"ab\n" * 50_000
    line = b"x" * length
    data = {"start": line + b"\n" + filler, "middle": filler + line + b"\n" + filler,
            "end": filler + line}[where]
    found = limits._find_long_line(data, MAX_LINE_BYTES)
    if length > MAX_LINE_BYTES:
        assert found == {"start": 1, "middle": 50_001, "end": 50_001}[where]
    else:
        assert found is None


@pytest.mark.parametrize(("text", "what"), [
    (b"x = [1, [2]]\nrecipients = []\n", None),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    (b"x = " + b"7" * 5000 + b"\n", "a number too long to read"),
])
def test_arrays_where_allowed_reach_the_parser_guards(text: bytes, what: str | None) -> None:
    """recipients.toml may hold arrays: the parser's own guards then give the one-line errors."""
    if what is None:
        assert scopefile.load_toml(text, "r.toml", arrays=True)["recipients"] == []
        with pytest.raises(StoreFormatError, match="an array or inline table value"):
            scopefile.load_toml(text, "r.toml")
        return
    with pytest.raises(StoreFormatError, match=what):
        scopefile.load_toml(text, "r.toml", arrays=True)


def test_recipients_parse_uses_its_own_cap() -> None:
    data = b'format = "secretstore-recipients/v1"\n' + b"#" * 100 + b"\n"
    data += b"# filler\n" * ((limits.MAX_RECIPIENTS_FILE_BYTES // 9) + 1)
    with pytest.raises(StoreFormatError, match="larger than 256 KiB"):
        recipients.parse(data, "recipients.toml")


# --- the writer never makes a file the reader refuses ------------------------------------------


def test_a_write_over_the_cap_drops_the_oldest_versions_and_stays_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from secretstore import scopefile
    from secretstore.identity import Identity
    from secretstore.store import TEAM, Store

    store, me = Store(str(tmp_path / "store")), Identity.generate("test")
    with monkeypatch.context() as whole:  # every write whole: no section to fold away
        whole.setattr(scopefile, "COMPACT_SECTIONS", 0)
        for number in range(11):  # 10 earlier versions of each
            store.set_many(TEAM, {"A": f"fake-a-{number:02d}", "B": f"fake-b-{number:02d}"}, me)
        store.set(TEAM, "GONE", "fake-gone-1", me)
        store.set(TEAM, "GONE", "fake-gone-2", me)
        store.delete(TEAM, "GONE", me)
    # the writes below try to append a section first (over the cap: written whole)
    path = Path(store.path(TEAM))
    full = path.stat().st_size
    monkeypatch.setattr(limits, "MAX_SCOPE_FILE_BYTES", full - 1500)  # a few versions too many
    store.set(TEAM, "A", "fake-a-new", me)
    assert "kept" in capsys.readouterr().err  # said once, on stderr
    assert path.stat().st_size <= full - 1500
    assert store.get(TEAM, "A", me) == "fake-a-new" and store.get(TEAM, "B", me) == "fake-b-10"
    kept = {name: len(store.versions(TEAM, name, me.public)) for name in ("A", "B", "GONE")}
    assert kept["A"] == kept["B"] and 1 < kept["A"] < 12  # the same number of earlier versions each
    assert kept["GONE"] == 1 + min(2, kept["A"] - 1)
    for _ in range(12):  # tighter and tighter, down to no earlier version at all
        monkeypatch.setattr(limits, "MAX_SCOPE_FILE_BYTES", path.stat().st_size - 1)
        store.set(TEAM, "B", f"fake-b-{_:02d}-again", me)
        if len(store.versions(TEAM, "B", me.public)) == 1:
            break
    assert len(store.versions(TEAM, "A", me.public)) == 1
    assert len(store.versions(TEAM, "GONE", me.public)) == 2  # a deleted name keeps what undelete brings back
    store.undelete(TEAM, "GONE", me)
    assert store.get(TEAM, "GONE", me) == "fake-gone-2"


def test_a_write_that_cannot_fit_is_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretstore.errors import LimitError
    from secretstore.identity import Identity
    from secretstore.store import TEAM, Store

    store, me = Store(str(tmp_path / "store")), Identity.generate("test")
    store.set(TEAM, "A", "fake-a", me)
    path = Path(store.path(TEAM))
    before = path.read_bytes()
    monkeypatch.setattr(limits, "MAX_SCOPE_FILE_BYTES", len(before) + 10)
    with pytest.raises(LimitError, match="even without earlier versions: nothing was written"):
        store.set(TEAM, "BIG", "fake-" + "x" * 4000, me)
    assert path.read_bytes() == before
