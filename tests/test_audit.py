"""The audit log: hash-chained JSON lines, bounded with rotation, never a value, never in the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
