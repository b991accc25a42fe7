"""A purge on your branch stands through a merge, in the history too.

``delete --purge`` drops a name and every earlier value. A branch cut before the purge
(a replay of an old, genuinely signed file, or a colleague's genuine work) still holds
those values in the name's history: the merge driver must not merge them back into the
history of the name you set again, where ``history``, ``get --version`` and ``rollback``
would find them. What your file's history in git held and your file no longer holds,
you dropped; versions you never saw are still merged entry by entry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from secretstore import envelope, scopefile
from secretstore.identity import load_identity
from tests.sharing_helpers import Person, team_of
from tests.test_merge_replay import head, merge, needs_git, replay

LEAKED = "fake-LEAKED-VALUE"
GOOD = "fake-good-value"


def next_second() -> None:
    """Wait for the clock's next second: a version is known by its name, time (to the second) and
    writer, so two writes of one name by one writer within a second would look like one version."""
    time.sleep(1 - time.time() % 1 + 0.01)


@pytest.fixture
def people(tmp_path: Path) -> dict[str, Person]:
    """Alice's store at C2 (published): C0 sets OTHER, C1 sets X to the leaked value, C2 sets X
    to a good one, so X's history holds the leaked value. ``c0``/``c2`` name the commits and
    ``c2_file`` is team.toml as C2 holds it (signed by Alice)."""
    found = team_of(tmp_path, ("alice", "carol", "mallory"))
    alice = found["alice"]
    alice.ss("recipients", "add", found["carol"].key, "--label=carol")
    alice.ss("set", "team", "--name=OTHER", "--value=fake-other")
    alice.publish("C0")
    alice.ss("set", "team", "--name=X", f"--value={LEAKED}")
    alice.publish("C1: a value that leaked")
    next_second()
    alice.ss("set", "team", "--name=X", f"--value={GOOD}")
    alice.publish("C2: changed")
    found["mallory"].clone(found["origin"])  # type: ignore[arg-type]
    return found


def _values(person: Person, data: bytes) -> dict[str, list[str | None]]:
    """Every version of every name in a scope file, decrypted with ``person``'s identity:
    current (None when deleted) first, then the history, oldest first."""
    file = scopefile.parse(data, "team.toml")
    keys = envelope.unwrap(file, load_identity(person.env["SECRETSTORE_IDENTITY"]), "team.toml")
    assert keys is not None
    return {
        name: [None if entry.current is None else scopefile.decrypt(file, keys, name, entry.current, "team.toml"),
               *(scopefile.decrypt(file, keys, name, version, "team.toml") for version in entry.history)]
        for name, entry in file.entries.items()
    }


def _history(person: Person, name: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(person.ss("history", "team", f"--name={name}", "--json").stdout)
    return rows


def _purge_x(alice: Person, *, set_again: bool) -> None:
    alice.ss("delete", "team", "--name=X", "--purge")
    if set_again:
        next_second()  # the value set again is a new version, not C2's
        alice.ss("set", "team", "--name=X", f"--value={GOOD}")
        assert [row["version"] for row in _history(alice, "X")] == [0]
    alice.git("commit", "-q", "-am", "X leaked: purged")


def _assert_nowhere(alice: Person) -> None:
    """The leaked value is in no version of any name of Alice's merged team.toml."""
    data = (alice.store / "team.toml").read_bytes()
    held = _values(alice, data)
    assert all(LEAKED not in versions for versions in held.values()), held


def _purge_then_merge_a_replay_of_c2(people, *, set_again: bool) -> None:  # type: ignore[no-untyped-def]
    """Alice purges X (setting it again or not); Mallory's branch off C0 commits C2's genuine
    file, whose X history holds the leaked value; Alice merges it, and the merge succeeds."""
    alice, mallory = people["alice"], people["mallory"]
    c0 = alice.git("rev-list", "--max-parents=0", "HEAD").stdout.strip()
    c2_file = (alice.store / "team.toml").read_bytes()
    _purge_x(alice, set_again=set_again)
    replay(mallory, "fix", c0, {"team.toml": c2_file})
    merged = merge(alice, "fix")
    assert merged.returncode == 0, merged.stdout + merged.stderr


@needs_git
def test_a_replayed_file_does_not_bring_back_a_purged_value_into_the_history(people) -> None:  # type: ignore[no-untyped-def]
    """The reviewer's case: X purged and set again on main; Mallory's branch off C0 commits
    C2's file, whose X history holds the leaked value."""
    alice = people["alice"]
    _purge_then_merge_a_replay_of_c2(people, set_again=True)
    assert [row["version"] for row in _history(alice, "X")] == [0]
    assert alice.ss("get", "team", "--name=X").stdout == GOOD
    old = alice.ss("get", "team", "--name=X", "--version=1", ok=False)
    assert old.returncode == 1 and LEAKED not in old.stdout
    assert alice.ss("rollback", "team", "--name=X", "--to=1", ok=False).returncode == 1
    _assert_nowhere(alice)
    assert alice.ss("get", "team", "--name=OTHER").stdout == "fake-other"


@needs_git
def test_a_purged_name_not_set_again_stays_purged(people) -> None:  # type: ignore[no-untyped-def]
    """The counterpart without setting X again (already the case before the history rule)."""
    alice = people["alice"]
    _purge_then_merge_a_replay_of_c2(people, set_again=False)
    got = alice.ss("get", "team", "--name=X", ok=False)
    assert got.returncode == 1 and LEAKED not in got.stdout
    assert "X" not in _values(alice, (alice.store / "team.toml").read_bytes())
    assert alice.ss("undelete", "team", "--name=X", ok=False).returncode == 1


def _carol_at_c2(people) -> Person:  # type: ignore[no-untyped-def]
    carol = people["carol"]
    carol.clone(people["origin"])
    carol.ss("trust", people["alice"].key)
    return carol


def _push_side(carol: Person) -> None:
    carol.git("commit", "-q", "-am", "side")
    carol.git("push", "-q", "origin", "HEAD:side")


@needs_git
def test_a_purge_stands_against_a_genuine_change_on_the_other_branch(people) -> None:  # type: ignore[no-untyped-def]
    """Carol, a trusted writer on a branch off C2, sets X anew; Alice purges X and sets it back
    to the value C2 had. The existing rule takes Carol's value (ours' value is the ancestor's),
    but Carol's history of X (the leaked value, C2's value) is what Alice purged."""
    alice = people["alice"]
    carol = _carol_at_c2(people)
    carol.ss("set", "team", "--name=X", "--value=fake-carol-new")
    _push_side(carol)
    _purge_x(alice, set_again=True)

    merged = merge(alice, "side")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert alice.ss("get", "team", "--name=X").stdout == "fake-carol-new"
    rows = _history(alice, "X")
    assert [row["version"] for row in rows] == [0] and rows[0]["writer"] == carol.key
    assert alice.ss("get", "team", "--name=X", "--version=1", ok=False).returncode == 1
    _assert_nowhere(alice)


@needs_git
def test_history_only_the_other_branch_saw_is_still_merged_around_a_purge(people) -> None:  # type: ignore[no-untyped-def]
    """Carol's branch off C2 sets X to a value of hers, then back to the good one; Alice purges X
    and sets the good value again. Carol's version Alice never saw is merged into X's history;
    the versions Alice purged (the leaked value, C2's) are not."""
    alice = people["alice"]
    carol = _carol_at_c2(people)
    _purge_x(alice, set_again=True)
    carol.ss("set", "team", "--name=X", "--value=fake-carol-between")
    carol.ss("set", "team", "--name=X", f"--value={GOOD}")
    carol.ss("set", "team", "--name=CAROLS", "--value=fake-carols")
    _push_side(carol)
    before = head(alice)

    merged = merge(alice, "side")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert head(alice) != before
    assert alice.ss("get", "team", "--name=X").stdout == GOOD
    assert alice.ss("get", "team", "--name=CAROLS").stdout == "fake-carols"
    rows = _history(alice, "X")
    assert [row["version"] for row in rows] == [0, 1]
    assert rows[1]["writer"] == carol.key
    assert alice.ss("get", "team", "--name=X", "--version=1").stdout == "fake-carol-between"
    _assert_nowhere(alice)


@needs_git
def test_resolving_with_theirs_does_not_bring_back_a_purged_value(people) -> None:  # type: ignore[no-untyped-def]
    """Alice purges X and sets a new value while Carol, off C2, sets one too: X is in conflict.
    `git resolve --theirs` takes Carol's value, without the versions Alice purged."""
    alice = people["alice"]
    carol = _carol_at_c2(people)
    carol.ss("set", "team", "--name=X", "--value=fake-carol-new")
    _push_side(carol)
    alice.ss("delete", "team", "--name=X", "--purge")
    alice.ss("set", "team", "--name=X", "--value=fake-alice-new")
    alice.git("commit", "-q", "-am", "X leaked: purged, changed at its source")

    merged = merge(alice, "side")
    assert merged.returncode != 0  # both changed X
    assert alice.ss("git", "resolve", "team", "--name=X", "--theirs").returncode == 0
    assert alice.ss("get", "team", "--name=X").stdout == "fake-carol-new"
    assert LEAKED not in [alice.ss("get", "team", "--name=X", f"--version={row['version']}").stdout
                          for row in _history(alice, "X")]
    _assert_nowhere(alice)
