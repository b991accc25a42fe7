"""The audit log: hash-chained JSON lines, bounded with rotation, never a value, never in the way."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore import audit


@pytest.fixture
def store(isolated_env: dict[str, str]) -> str:
    return isolated_env["store"]


def lines_of(store: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(audit.log_path(store)).read_text().splitlines()]


def test_records_chain_and_verify(store: str) -> None:
    assert audit.record(store, "set", scope="team", names=["B", "A"], key="ssk2x", label="alice")
    assert audit.record(store, "get", scope="project prj42", names=["DB"], key="ssk2x", label='q"uo\\te\n')
    first, second = lines_of(store)
    assert first["names"] == ["A", "B"] and first["prev"] == audit.GENESIS
    assert second["label"] == 'q"uo\\te\n'  # free text is escaped, the line stays one JSON object
    assert audit.verify(store) == []
    assert os.stat(audit.log_path(store)).st_mode & 0o777 == 0o600


def test_several_scopes_at_once_chain_like_single_records(store: str) -> None:
    assert audit.record(store, "set", scope="team", names=["A"], key="ssk2x")
    assert audit.record_many(store, "exec", [("team", ["A", "B"]), ("project prj42", ["C"]),
                                             ("cluster gpu-a", ["caf\u00e9", 'q"\\'])], key="ssk2x")
    entries = lines_of(store)
    assert [(e["command"], e["scope"]) for e in entries] == [
        ("set", "team"), ("exec", "team"), ("exec", "project prj42"), ("exec", "cluster gpu-a")]
    assert entries[3]["names"] == ["caf\u00e9", 'q"\\']
    assert audit.verify(store) == []
    # the batch is chained line by line: dropping its middle line is seen
    path = Path(audit.log_path(store))
    kept = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(kept[:2] + kept[3:]))
    assert audit.verify(store) != []


@pytest.mark.parametrize("damage", ["edit", "remove", "remove-first", "garbage"])
def test_a_removed_or_edited_line_breaks_the_chain(store: str, damage: str) -> None:
    for index in range(4):
        audit.record(store, "get", scope="team", names=[f"N{index}"], key="ssk2x")
    path = Path(audit.log_path(store))
    lines = path.read_text().splitlines(keepends=True)
    if damage == "edit":
        lines[1] = lines[1].replace("N1", "N9")
    elif damage == "remove":
        del lines[2]
    elif damage == "remove-first":
        del lines[0]
    else:
        lines[1] = "not json at all\n"
    path.write_text("".join(lines))
    problems = audit.verify(store)
    assert problems, damage
    assert all(str(path) in problem for problem in problems)
    # a damaged log never stops a command from appending
    assert audit.record(store, "set", scope="team", names=["AFTER"], key="ssk2x")


def test_rotation_keeps_the_chain_verifiable_and_the_size_bounded(store: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(audit, "MAX_BYTES", 2000)
    for index in range(200):
        audit.record(store, "get", scope="team", names=[f"NAME_{index}"], key="ssk2" + "k" * 40)
    files = audit.generations(store)
    assert len(files) == audit.GENERATIONS
    assert all(os.path.getsize(f) < 2000 + 400 for f in files)
    assert audit.verify(store) == []  # the anchors chain the generations kept
    first_kept = Path(files[0]).read_text().splitlines()[0]
    assert json.loads(first_kept)["command"] == "rotated"
    # removing a line inside an older generation is still found
    older = Path(files[1])
    older_lines = older.read_text().splitlines(keepends=True)
    del older_lines[3]
    older.write_text("".join(older_lines))
    assert audit.verify(store)


def test_concurrent_appends_never_fork_the_chain(store: str, tmp_path: Path) -> None:
    script = (
        "import sys\nfrom secretstore import audit\n"
        "for i in range(40):\n    audit.record(sys.argv[1], 'get', scope='team', names=[f'W{sys.argv[2]}_{i}'])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, store, str(n)]) for n in range(6)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(lines_of(store)) == 240
    assert audit.verify(store) == []


def test_an_unwritable_log_is_skipped_not_an_error(store: str, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("SECRETSTORE_STATE_DIR", str(blocker))
    assert audit.record(store, "get", scope="team", names=["A"]) is False


def test_audit_can_be_turned_off(store: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SECRETSTORE_AUDIT", "0")
    assert audit.record(store, "get", scope="team", names=["A"]) is False
    assert not os.path.exists(audit.log_path(store))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=8), st.text(max_size=12))
def test_each_line_is_the_json_of_its_fields(items: list[str], text: str) -> None:
    """``encode`` writes JSON without the json module: whatever the strings (quotes, backslashes,
    control characters, surrogates, the names a list of 10,000 joins at once), json reads the
    same fields back."""
    line = audit.encode([("names", items), ("detail", text), ("count", len(items)), ("ok", True), ("none", None)])
    assert "\n" not in line
    assert json.loads(line) == {"names": items, "detail": text, "count": len(items), "ok": True, "none": None}


def test_a_list_of_plain_names_and_one_that_needs_escaping() -> None:
    assert audit.encode([("names", ["A_1", "B"])]) == '{"names":["A_1","B"]}'
    assert json.loads(audit.encode([("names", ["A", 'say "hi"\\', "tab\there"])]))["names"] == [
        "A", 'say "hi"\\', "tab\there"]


# 2026-12-01T09:30:15Z, a Tuesday
NOW = 1796117415.0


@pytest.mark.parametrize(("when", "bound"), [
    ("2026-12-01", "2026-12-01"),
    ("2026-12-01T09:00", "2026-12-01T09:00"),
    ("2026-12-01T09:00:00Z", "2026-12-01T09:00:00"),
    ("90s", "2026-12-01T09:28:45Z"),
    ("30m", "2026-12-01T09:00:15Z"),
    ("2h", "2026-12-01T07:30:15Z"),
    ("1h30m", "2026-12-01T08:00:15Z"),
    ("7d", "2026-11-24T09:30:15Z"),
    ("2w", "2026-11-17T09:30:15Z"),
    ("today", "2026-12-01T00:00:00Z"),
    ("Yesterday", "2026-11-30T00:00:00Z"),
    ("999999w", ""),  # before year 1: every entry
])
def test_since_takes_dates_durations_and_days(when: str, bound: str) -> None:
    from datetime import datetime

    assert datetime.fromtimestamp(NOW, UTC).isoformat() == "2026-12-01T09:30:15+00:00"
    assert audit.since_bound(when, now=NOW) == bound


@pytest.mark.parametrize("when", ["", "1x", "-1h", "1 h", "h", "2h ago", "tomorrow", "2026-13-01", "2026-12-01T24",
                                  "2026-12-01 09:00", "1234567s"])
def test_since_refuses_what_is_not_a_when(when: str) -> None:
    assert audit.since_bound(when, now=NOW) is None


def test_since_bounds_compare_with_record_times(store: str) -> None:
    """A duration's bound, like a date's, compares as text with the times records carry."""
    assert audit.record(store, "set", scope="team", names=["A"])
    [entry] = list(audit.read(store))
    assert entry.fields is not None
    stamp = str(entry.fields["time"])
    assert stamp >= str(audit.since_bound("1h")) and stamp >= str(audit.since_bound("today"))
    assert not stamp >= str(audit.since_bound("2999-01-01"))


# --- a record too large for the log's bounds (secretstore reads back every file it writes) -----


def long_names(count: int, length: int = 250) -> list[str]:
    """``count`` distinct valid secret names of ``length`` characters (the limit is 255)."""
    return [f"N{index:07d}_".ljust(length, "X") for index in range(count)]


def test_a_read_of_more_names_than_a_file_holds_is_recorded_and_verifies_from_the_console_script(
        store: str, cli_run: Callable[..., subprocess.CompletedProcess[bytes]]) -> None:
    """An exec of 20,000 names of 250 characters would be a 5 MB line, more than the 4 MiB a
    reader reads of a log file: it used to be written whole, and then ``audit`` and ``audit
    --verify`` refused the log secretstore itself wrote. It is one line still, which counts the
    names and holds their digest, and the chain goes on after it."""
    from secretstore import limits

    assert cli_run("set", "team", "--name", "FOO", input=b"fake-value").returncode == 0  # the store
    names = long_names(20_000)
    assert len(",".join(names)) > limits.MAX_STATE_FILE_BYTES
    assert audit.record(store, "exec", scope="team", names=names, key="ssk2x", label="alice")
    assert audit.record(store, "get", scope="team", names=["AFTER"], key="ssk2x")
    done = cli_run("audit", "--verify")
    assert done.returncode == 0, done.stderr + done.stdout
    assert b"intact" in done.stdout
    done = cli_run("audit", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["command"] for row in rows] == ["set", "exec", "get"]
    big = rows[1]
    assert "names" not in big and big["names_omitted"] is True and big["names_count"] == 20_000
    assert big["names_digest"] == audit.names_digest(reversed(names))  # sorted, as the record's names
    assert big["label"] == "alice" and big["scope"] == "team"
    table = cli_run("audit")
    assert table.returncode == 0 and b"20,000 names (too many to list; audit --json has their digest)" in table.stdout
    # --name keeps a record too long to list its names (it may hold the one asked for)
    done = cli_run("audit", "--name", names[7], "--json")
    assert [row["command"] for row in json.loads(done.stdout)] == ["exec"]
    assert [row["command"] for row in json.loads(cli_run("audit", "--name", "AFTER", "--json").stdout)] == [
        "exec", "get"]
    # the next line chains to the summary line, and every file is one a reader reads
    lines = Path(audit.log_path(store)).read_bytes().splitlines()
    assert json.loads(lines[-1])["prev"] == audit._digest(lines[-2])
    assert len(lines[-2]) <= audit.MAX_RECORD_BYTES
    assert all(os.path.getsize(f) <= audit.MAX_BYTES for f in audit.generations(store))


def test_a_record_over_the_readers_bound_is_summarized_and_the_chain_goes_on(
        store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with the reader's bound scaled down (64 KiB, so lines of at most 16 KiB): in one
    append of three scopes, the middle one too large; what is written reads back and verifies."""
    from secretstore import limits

    monkeypatch.setattr(limits, "MAX_STATE_FILE_BYTES", 64 * 1024)
    assert audit.record(store, "set", scope="team", names=["FIRST"], key="ssk2x")
    names = long_names(400)  # a 100 KB list
    assert audit.record_many(store, "exec", [("team", ["A"]), ("project prj42", names), ("cluster c1", ["B"])],
                             key="ssk2x")
    assert audit.record(store, "get", scope="team", names=["AFTER"], key="ssk2x")
    assert audit.verify(store) == []
    entries = [entry.fields for entry in audit.read(store)]
    assert all(fields is not None for fields in entries)
    assert [(f["command"], f["scope"]) for f in entries if f is not None and f["command"] != "rotated"] == [
        ("set", "team"), ("exec", "team"), ("exec", "project prj42"), ("exec", "cluster c1"), ("get", "team")]
    [summary] = [f for f in entries if f is not None and f.get("names_omitted")]
    assert summary["names_count"] == 400 and summary["names_digest"] == audit.names_digest(names)
    for path in audit.generations(store):
        assert os.path.getsize(path) <= limits.MAX_STATE_FILE_BYTES
        assert max(len(line) for line in Path(path).read_bytes().splitlines()) <= 16 * 1024


def test_a_detail_too_long_for_a_line_is_cut_and_says_so(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A merge that leaves thousands of names unmerged lists them in its detail: past the line's
    bound, the names are summarized and the detail keeps its first DETAIL_KEEP characters."""
    from secretstore import limits

    monkeypatch.setattr(limits, "MAX_STATE_FILE_BYTES", 64 * 1024)
    names = long_names(400)
    unmerged = "unmerged: " + " ".join(names)
    assert audit.record(store, "git merge", scope="team", names=names, key="ssk2x", detail=unmerged)
    assert audit.record(store, "get", scope="team", names=["AFTER"], key="ssk2x")
    assert audit.verify(store) == []
    first = next(iter(audit.read(store))).fields
    assert first is not None and first["names_count"] == 400
    detail = str(first["detail"])
    assert detail.startswith(unmerged[:audit.DETAIL_KEEP])
    assert detail.endswith(f"... ({len(unmerged) - audit.DETAIL_KEEP:,} more characters)")


def test_a_file_is_rotated_before_a_line_would_take_it_past_max_bytes(
        store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotation is decided for each line before it is written (it was decided once per append, on
    the size before it), so no file passes MAX_BYTES, also when one append's lines cross it; each
    new file's anchor counts the lines of the file it follows, and the chain verifies."""
    monkeypatch.setattr(audit, "MAX_BYTES", 4000)
    for index in range(30):
        size = 1 + index * 7 % 40  # lines of about 100 bytes to 1 KB
        assert audit.record_many(store, "exec", [("team", [f"T{index}_{n:03d}_PADDING" for n in range(size)]),
                                                 ("project prj42", [f"P{index}_{n:03d}" for n in range(size)])],
                                 key="ssk2x")
        assert all(os.path.getsize(path) <= 4000 for path in audit.generations(store)), index
    files = audit.generations(store)
    assert len(files) == audit.GENERATIONS
    assert audit.verify(store) == []
    for older, newer in itertools.pairwise(files):
        anchor = json.loads(Path(newer).read_bytes().splitlines()[0])
        assert anchor["command"] == "rotated"
        assert anchor["lines"] == len(Path(older).read_bytes().splitlines())


def test_a_log_file_an_older_secretstore_wrote_too_large_is_reported_and_the_rest_read(
        store: str, cli_run: Callable[..., subprocess.CompletedProcess[bytes]]) -> None:
    """Before lines were bounded, one append could leave a generation over the 4 MiB a reader
    reads; ``audit`` then failed outright, with a hint about git that does not apply to a local
    log. Now that file is reported and skipped, and the generations after it are read."""
    from secretstore import limits

    assert cli_run("set", "team", "--name", "FOO", input=b"fake-value").returncode == 0
    path = audit.log_path(store)
    with open(path, "rb") as log:
        first = log.read().rstrip(b"\n")
    old = json.dumps({"time": "2026-11-30T10:00:00Z", "command": "exec", "names": long_names(1),
                      "detail": "x" * (limits.MAX_STATE_FILE_BYTES + 10), "prev": audit._digest(first)})
    with open(path, "ab") as log:  # the old writer appended it whole
        log.write(old.encode() + b"\n")
    assert audit.record(store, "get", scope="team", names=["FOO"], key="ssk2x")  # rotates first
    done = cli_run("audit", "--json")
    assert done.returncode == 0, done.stderr
    assert [row["command"] for row in json.loads(done.stdout)] == ["get"]
    assert b"1 damaged line(s) of the audit log were skipped" in done.stderr
    done = cli_run("audit", "--verify")
    assert done.returncode == 1 and done.stderr == b""
    assert done.stdout.decode().splitlines() == [
        f"{path}.1:0: larger than 4 MiB, not read (written before secretstore bounded the log's lines)",
    ]


def test_exec_lines_say_when_no_value_or_only_referenced_ones_reached_the_program(
        store: str, cli_run: Callable[..., subprocess.CompletedProcess[bytes]]) -> None:
    """A dry run and a --refs-only run read (decrypt) the scope as a run does; their lines say
    where the values went, so the log does not claim a program got every value."""
    for name in ("A", "B"):
        assert cli_run("set", "team", "--name", name, input=b"fake-value").returncode == 0
    assert cli_run("exec", "--", "true").returncode == 0
    assert cli_run("exec", "--dry-run", "--", "true").returncode == 0
    assert cli_run("exec", "--refs-only", "--env", "Z=secret:A", "--", "true").returncode == 0
    rows = [row for row in json.loads(cli_run("audit", "--json").stdout) if row["command"] == "exec"]
    assert [(row["names"], row.get("detail")) for row in rows] == [
        (["A", "B"], None),
        (["A", "B"], "dry run: names and scopes shown, no value given to a program"),
        (["A", "B"], "refs only: only values named by secret:NAME references were given to the program"),
    ]
