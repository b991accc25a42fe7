"""Crash consistency: SIGKILL the writer at each injected point of ``fsio.atomic_write``
and of ``fsio.append_at``.

The real console script is killed by ``SECRETSTORE_TEST_CRASH_AT`` (see
fsio.py) after the temp file is written, after it is fsync-ed, after it is
linked under a temp name, or after the rename; and ``rotate --all`` also
between two scopes. Every outcome must be exactly the old or the new state,
readable. The temp file is unnamed (O_TMPFILE) until it is complete, so only
a writer killed between the link and the rename leaves one (or any writer,
where the file system has no O_TMPFILE); it is ignored by every reader and
removed by the next writer.

A one-name write to a version-4 file appends a section instead (``fsio.append_at``):
killed half-way through the section, or after it, the file reads as the old or the new
state, and the next writer cuts off the half section. The rename path is exercised on
version-3 files, whose one-name write still replaces the file (``scopefile.Splice``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from secretstore import fsio, scopefile
from secretstore.identity import Identity, create_identity
from secretstore.store import Scope, Store

POINTS = ["after-temp-write", "after-fsync", "after-link", "after-replace"]
APPEND_POINTS = ["append-partial", "after-append"]
TEAM = Scope("team")
PROJECT = Scope("project", "prj1")


def anonymous_temps_here(directory: str) -> bool:
    """Whether fsio writes unnamed temp files (O_TMPFILE) in ``directory``."""
    fd = fsio._open_anonymous(directory, 0o600)
    if fd is None:
        return False
    os.close(fd)
    return True


def left_by_early_kill(directory: str) -> int:
    """Temp files a writer killed before linking leaves: none when they are unnamed."""
    return 0 if anonymous_temps_here(directory) else 1


@pytest.fixture
def setup(isolated_env: dict[str, str]) -> tuple[Store, Identity]:
    identity = create_identity(isolated_env["identity"])
    store = Store(isolated_env["store"])
    store.set(TEAM, "KEEP", "keep-me", identity)
    store.set(TEAM, "OLD", "old-value", identity)
    store.set(PROJECT, "P", "project-value", identity)
    return store, identity


@pytest.fixture
def setup_v3(isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[Store, Identity]:
    """Version-3 files: a one-name write replaces the file (``atomic_write``) rather than append."""
    with monkeypatch.context() as patched:
        patched.setattr(scopefile, "WRITE_FORMAT", scopefile.FORMAT_V3)
        identity = create_identity(isolated_env["identity"])
        store = Store(isolated_env["store"])
        store.set_many(TEAM, {"KEEP": "keep-me", "OLD": "old-value"}, identity)
        store.set(PROJECT, "P", "project-value", identity)
    assert Path(store.path(TEAM)).read_bytes().startswith(scopefile.V3_START)
    return store, identity


def temps(store: Store, scope: Scope) -> list[str]:
    directory = os.path.dirname(store.path(scope))
    return [name for name in os.listdir(directory) if fsio.is_temp_name(name)]


def snapshot(store: Store, identity: Identity) -> dict[Scope, dict[str, str]]:
    return {scope: store.read(scope, identity) for scope in (TEAM, PROJECT)}


def killed(done) -> bool:  # type: ignore[no-untyped-def]
    return done.returncode == -signal.SIGKILL


OPERATIONS = {
    # name: (command line, expected team values afterwards)
    "set-existing": (["set", "team", "--name=OLD", "--value=new-value"],
                     {"KEEP": "keep-me", "OLD": "new-value"}),
    "set-new-name": (["set", "team", "--name=ADDED", "--value=added"],
                     {"KEEP": "keep-me", "OLD": "old-value", "ADDED": "added"}),
    "delete": (["delete", "team", "--name=OLD"], {"KEEP": "keep-me"}),
}


# Every point for a plain set; the rest of the matrix behind --run-slow (each case
# costs several console-script start-ups).
MATRIX = [
    pytest.param(operation, point, marks=() if keep else pytest.mark.slow)
    for operation in sorted(OPERATIONS)
    for point in POINTS
    for keep in [operation == "set-existing"
                 or (operation, point) in {("delete", "after-fsync"), ("delete", "after-link"),
                                           ("set-new-name", "after-temp-write")}]
]


@pytest.mark.parametrize(("operation", "point"), MATRIX)
def test_killed_writer_leaves_old_or_new_state(setup_v3, cli_run, point: str, operation: str) -> None:
    store, identity = setup_v3
    before = snapshot(store, identity)
    args, team_after = OPERATIONS[operation]
    done = cli_run(*args, env={"SECRETSTORE_TEST_CRASH_AT": point})
    assert killed(done), (done.returncode, done.stderr)

    state = snapshot(store, identity)
    if point == "after-replace":
        assert state == {**before, TEAM: team_after}
        assert temps(store, TEAM) == []
    else:
        assert state == before
        left = 1 if point == "after-link" else left_by_early_kill(store.root)
        assert len(temps(store, TEAM)) == left, "only a writer killed after linking leaves a temp file"
        # readers ignore it: the CLI lists and gets the old state, scopes() skips it
        listed = cli_run("list", "team", "--json")
        assert listed.returncode == 0, listed.stderr
        assert b".tmp-" not in listed.stdout
        assert cli_run("get", "team", "--name=OLD").stdout == b"old-value"
        assert TEAM in store.scopes() and len(store.scopes()) == 2

    # the next writer removes any stale temp file and works on the state it finds
    follow = cli_run("set", "team", "--name=NEXT", "--value=next")
    assert follow.returncode == 0, follow.stderr
    assert temps(store, TEAM) == []
    expected = dict(state[TEAM], NEXT="next")
    assert store.read(TEAM, identity) == expected


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("point", APPEND_POINTS)
def test_killed_appender_leaves_old_or_new_state(setup, cli_run, point: str, operation: str) -> None:
    """Version 4: killed half-way through its section, the file reads as before (the half
    section is skipped by every reader, and cut off by the next writer); killed after it, as after."""
    store, identity = setup
    path = Path(store.path(TEAM))
    raw = path.read_bytes()
    before = snapshot(store, identity)
    args, team_after = OPERATIONS[operation]
    done = cli_run(*args, env={"SECRETSTORE_TEST_CRASH_AT": point})
    assert killed(done), (done.returncode, done.stderr)
    now = path.read_bytes()
    assert now.startswith(raw) and len(now) > len(raw)  # appended to, in place
    state = snapshot(store, identity)
    if point == "after-append":
        assert state == {**before, TEAM: team_after}
    else:
        assert state == before
        assert scopefile.last_seal(now) is None  # it ends in half a section, no seal after it
        listed = cli_run("list", "team", "--json")
        assert listed.returncode == 0, listed.stderr
        assert cli_run("get", "team", "--name=OLD").stdout == b"old-value"
    assert temps(store, TEAM) == []
    follow = cli_run("set", "team", "--name=NEXT", "--value=next")
    assert follow.returncode == 0, follow.stderr
    assert store.read(TEAM, identity) == dict(state[TEAM], NEXT="next")
    after = path.read_bytes()
    sealed = now if point == "after-append" else raw
    assert after.startswith(sealed) and after.count(b"\n[[seals]]\n") == sealed.count(b"\n[[seals]]\n") + 1


@pytest.mark.parametrize(
    "point", [pytest.param(p, marks=() if p == "after-fsync" else pytest.mark.slow)
              for p in POINTS if p != "after-link"]  # a first write links the new file directly
)
def test_killed_first_write_leaves_no_scope_or_a_whole_one(setup, cli_run, point: str) -> None:
    store, identity = setup
    scope = Scope("cluster", "gpu-a")
    done = cli_run("set", "cluster", "--id=gpu-a", "--name=C", "--value=c", env={
        "SECRETSTORE_TEST_CRASH_AT": point})
    assert killed(done)
    if point == "after-replace":
        assert store.read(scope, identity) == {"C": "c"}
    else:
        assert store.load(scope) is None
        assert scope not in store.scopes()
        got = cli_run("get", "cluster", "--id=gpu-a", "--name=C")
        assert got.returncode == 1 and b"Traceback" not in got.stderr
        clusters = os.path.dirname(store.path(scope))
        assert len(temps(store, scope)) == (left_by_early_kill(clusters) if os.path.isdir(clusters) else 0)
    assert cli_run("set", "cluster", "--id=gpu-a", "--name=D", "--value=d").returncode == 0
    assert temps(store, scope) == []


@pytest.mark.parametrize(
    "point",
    [pytest.param(p, marks=() if p in ("after-fsync", "between-scopes") else pytest.mark.slow)
     for p in [*POINTS, "between-scopes"]],
)
def test_killed_rotation_leaves_each_file_old_or_new(setup, cli_run, point: str) -> None:
    store, identity = setup
    before = snapshot(store, identity)
    raw_before = {scope: Path(store.path(scope)).read_bytes() for scope in (TEAM, PROJECT)}
    done = cli_run("rotate", "--all", env={"SECRETSTORE_TEST_CRASH_AT": point})
    assert killed(done), (done.returncode, done.stderr)
    assert snapshot(store, identity) == before  # every file readable, every value intact
    rotated = [s for s in (TEAM, PROJECT) if Path(store.path(s)).read_bytes() != raw_before[s]]
    if point in ("after-temp-write", "after-fsync", "after-link"):
        assert rotated == []
    else:
        assert rotated == [TEAM]  # team is rotated first, then the kill
    assert cli_run("rotate", "--all").returncode == 0
    assert snapshot(store, identity) == before
    assert temps(store, TEAM) == [] and temps(store, PROJECT) == []


def test_reader_ignores_a_temp_file_that_looks_like_a_scope(setup, cli_run) -> None:
    """A stale temp named like a scope file must not appear as a scope, even in projects/."""
    store, identity = setup
    stale = Path(store.path(PROJECT)).with_name(".prj2.toml.tmp-0123456789ab")
    stale.write_bytes(b"garbage, half written")
    stale.chmod(0o600)
    assert [s for s in store.scopes() if s.scope_id == "prj2"] == []
    done = cli_run("exec", "--project=prj1", "--", "true")
    assert done.returncode == 0, done.stderr
    assert cli_run("set", "project", "--id=prj1", "--name=Q", "--value=q").returncode == 0
    assert not stale.exists()
