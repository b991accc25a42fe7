"""Merges where both branches change recipients.toml and a scope file, with real git.

Git merges one path at a time, recipients.toml before projects/*.toml (git 2.39's ort), and
writes the work tree only once every path is merged: while a scope file is merged the roster
in the work tree is still the local side's. The roster merge signs the merged roster and
records its counter as read, so a scope-file merge that read the work tree's roster found it
"rolled back" (or, through it, its writer untrusted) and the merge failed: an offboarding
merged against a teammate's concurrent grant could not be merged at all.

The story of each test: Bob reads the team only. On main Alice removes Bob from the store and
sets a value in project p1; on a branch Carol (a member Alice trusts through the roster, who
trusts Alice) adds Bob to p1 and sets a value there. Whoever merges (or rebases), Bob stays
removed: revoked in the roster and sealed into no file; what he could read on Carol's branch
is "rotate needed". A roster genuinely put back afterwards is refused as before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from secretstore import recipients, scopefile
from secretstore.errors import RollbackError
from tests.sharing_helpers import Person, team_of

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

P1 = ("project", "--id=p1")


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Person]:
    people = team_of(tmp_path, ("alice", "bob", "carol", "mallory"))
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    alice.ss("set", "team", "--name=WANDB_API_KEY", "--value=fake-team-wandb")
    alice.ss("set", *P1, "--name=DB_PASSWORD", "--value=fake-p1-db")
    alice.ss("recipients", "add", carol.key, "--label=carol")  # store-wide, endorsed by Alice
    alice.ss("recipients", "add", bob.key, "--label=bob", "--team")  # Bob reads the team only
    alice.publish("the store")
    carol.clone(people["origin"])  # type: ignore[arg-type]
    carol.ss("trust", alice.key)
    people["mallory"].clone(people["origin"])  # type: ignore[arg-type]
    return people  # type: ignore[return-value]


def _offboarding_against_a_grant(world: dict[str, Person]) -> tuple[Person, Person, Person]:
    """Carol's branch ``side`` adds Bob to p1 and sets a value there; Alice's main (committed,
    not pushed) removes Bob from the store and sets a value in p1."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    carol.ss("recipients", "add", bob.key, "--label=bob", "--project=p1")
    carol.ss("set", *P1, "--name=FROM_CAROL", "--value=fake-from-carol")  # sealed to Bob there
    carol.git("add", "-A")
    carol.git("commit", "-q", "-m", "bob joins p1")
    carol.git("push", "-q", "origin", "HEAD:side")
    alice.ss("recipients", "remove", bob.key)
    alice.ss("set", *P1, "--name=ON_MAIN", "--value=fake-on-main")  # Bob never could read it
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "bob leaves")
    return alice, bob, carol


def _rotate_needed(person: Person, *scope: str) -> dict[str, bool]:
    listed = json.loads(person.ss("list", *scope, "--json").stdout)
    return {row["name"]: row["rotate_needed"] for row in listed}


def _sealed_to(person: Person, relpath: str) -> list[str]:
    return [s.public_key for s in scopefile.parse((person.store / relpath).read_bytes(), relpath).recipients]


def _assert_bob_stays_removed(person: Person, bob: Person) -> None:
    roster = recipients.parse((person.store / recipients.FILENAME).read_bytes(), recipients.FILENAME)
    assert bob.key in roster.revoked and all(m.public_key != bob.key for m in roster.members)
    assert bob.key not in person.ss("recipients", "list").stdout
    for relpath in ("team.toml", "projects/p1.toml"):
        assert bob.key not in _sealed_to(person, relpath), relpath
    values = {"DB_PASSWORD": "fake-p1-db", "FROM_CAROL": "fake-from-carol", "ON_MAIN": "fake-on-main"}
    for name, value in values.items():
        assert person.ss("get", *P1, f"--name={name}").stdout == value
    assert person.ss("get", "team", "--name=WANDB_API_KEY").stdout == "fake-team-wandb"
    # Bob could read p1's values on Carol's branch (sealed to him there), and the team's everywhere
    assert _rotate_needed(person, *P1) == {"DB_PASSWORD": True, "FROM_CAROL": True, "ON_MAIN": False}
    assert _rotate_needed(person, "team") == {"WANDB_API_KEY": True}
    findings = json.loads(person.ss("doctor", "--json").stdout)
    assert not [f for f in findings if f["level"] == "error"], findings
    warnings = sorted(f["message"] for f in findings if f["level"] == "warning")
    assert warnings == [
        "project p1: rotate needed (a removed recipient could read them): DB_PASSWORD, FROM_CAROL",
        "team: rotate needed (a removed recipient could read them): WANDB_API_KEY",
    ], findings
    assert not [f for f in findings if bob.key in f["message"]], findings


def _done(person: Person, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    assert person.git("status", "--porcelain").stdout == ""


def test_alice_merges_the_branch_that_added_bob(world) -> None:  # type: ignore[no-untyped-def]
    """The reported failure: the p1 merge found the work tree's roster (ours, version n) older
    than the merged one the roster merge had just recorded (n + 1)."""
    alice, bob, _carol = _offboarding_against_a_grant(world)
    alice.git("fetch", "-q", "origin")
    _done(alice, alice.git("merge", "--no-edit", "origin/side", ok=False))
    _assert_bob_stays_removed(alice, bob)


def test_carol_merges_the_offboarding(world) -> None:  # type: ignore[no-untyped-def]
    """The other direction: ours added Bob to p1, theirs removed him from the store. Only the
    merged roster says Bob is revoked (Carol never removed him herself): the p1 merge must use
    it, or p1 stays sealed to Bob with Alice's new value in it."""
    alice, bob, carol = _offboarding_against_a_grant(world)
    alice.git("push", "-q", "origin", "HEAD:main")
    carol.git("fetch", "-q", "origin")
    _done(carol, carol.git("merge", "--no-edit", "origin/main", ok=False))
    _assert_bob_stays_removed(carol, bob)


@pytest.mark.parametrize("who", ["alice", "carol"])
def test_a_rebase_across_the_offboarding(world, who) -> None:  # type: ignore[no-untyped-def]
    """git rebase runs the drivers too (ours is the branch rebased onto): Alice replays her
    offboarding onto Carol's branch, or Carol replays her grant onto Alice's main."""
    alice, bob, carol = _offboarding_against_a_grant(world)
    alice.git("push", "-q", "origin", "HEAD:main")
    person, onto = (alice, "origin/side") if who == "alice" else (carol, "origin/main")
    person.git("fetch", "-q", "origin")
    _done(person, person.git("rebase", onto, ok=False))
    _assert_bob_stays_removed(person, bob)


def _put_back(mallory: Person, relpath: str, data: bytes) -> None:
    """Mallory (push access, no trusted key) commits old, genuinely signed bytes on main."""
    mallory.git("fetch", "-q", "origin")
    mallory.git("checkout", "-q", "-B", "main", "origin/main")
    (mallory.store / relpath).write_bytes(data)
    mallory.git("commit", "-q", "-am", "routine update")
    mallory.git("push", "-q", "origin", "HEAD:main")


def test_the_merged_roster_is_recorded_so_a_side_put_back_after_the_merge_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    """The merge records the merged roster's counter as it always did: Carol's side of the roster
    (which lists Bob, at a counter no higher than the one Alice had read before merging), put
    back on main right after Alice merged and before she ran any command, is refused as rolled
    back, not read as newer (as it would be if only a normal command's read recorded it)."""
    alice, bob, _carol = _offboarding_against_a_grant(world)
    ours = recipients.parse((alice.store / recipients.FILENAME).read_bytes(), "ours")
    alice.git("fetch", "-q", "origin")
    _done(alice, alice.git("merge", "--no-edit", "origin/side", ok=False))
    alice.git("push", "-q", "origin", "HEAD:main")
    carols_roster = alice.git("show", f"origin/side:{recipients.FILENAME}").stdout.encode()
    theirs = recipients.parse(carols_roster, "theirs")
    assert any(m.public_key == bob.key for m in theirs.members) and theirs.counter <= ours.counter
    _put_back(world["mallory"], recipients.FILENAME, carols_roster)
    alice.pull()
    refused = alice.ss("recipients", "list", ok=False)
    assert refused.returncode == 1 and "rolled back" in refused.stderr, refused.stderr
    refused = alice.ss("set", *P1, "--name=AFTER", "--value=fake-after", ok=False)
    assert refused.returncode == 1 and "rolled back" in refused.stderr, refused.stderr


def test_a_scope_merge_after_the_roster_was_put_back_still_refuses_it(world) -> None:  # type: ignore[no-untyped-def]
    """What the roster merge left for the scope merges of its own merge never stands in for a
    roster put back later: Alice's own pre-merge roster (the very bytes that merge took as
    ours) is put back on main; the next merge of p1 refuses it instead of using the old result."""
    alice, _bob, carol = _offboarding_against_a_grant(world)
    before_merge = (alice.store / recipients.FILENAME).read_bytes()
    alice.git("fetch", "-q", "origin")
    _done(alice, alice.git("merge", "--no-edit", "origin/side", ok=False))
    alice.git("push", "-q", "origin", "HEAD:main")
    carol.pull()
    carol.ss("set", *P1, "--name=NEXT_CAROL", "--value=fake-next-carol")
    carol.git("commit", "-q", "-am", "next")
    carol.git("push", "-q", "origin", "HEAD:side2")
    alice.ss("set", *P1, "--name=NEXT_ALICE", "--value=fake-next-alice")
    alice.git("commit", "-q", "-am", "next")
    _put_back(world["mallory"], recipients.FILENAME, before_merge)
    alice.pull("--no-rebase")  # only theirs changed recipients.toml: git takes it, no driver runs
    assert (alice.store / recipients.FILENAME).read_bytes() == before_merge
    alice.git("fetch", "-q", "origin")
    merged = alice.git("merge", "--no-edit", "origin/side2", ok=False)
    assert merged.returncode != 0
    assert "projects/p1.toml" in merged.stdout + merged.stderr
    assert "rolled back" in merged.stderr or "whom you do not trust" in merged.stderr, merged.stderr
    refused = alice.ss("recipients", "list", ok=False)
    assert refused.returncode == 1 and "rolled back" in refused.stderr


def test_the_merged_roster_stands_in_for_ours_only_while_nothing_moved(isolated_env, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The library rule behind the driver: a scope-file merge reads the roster the roster merge
    left only while HEAD, the work tree's roster (ours') and the newest roster counter read are
    those of that merge; otherwise the work tree's roster, checked as always."""
    from secretstore import gitmerge
    from secretstore.identity import create_identity
    from secretstore.store import TEAM, Store

    alice, bob, carol = (create_identity(str(tmp_path / "keys" / name)) for name in ("alice", "bob", "carol"))
    store = Store(isolated_env["store"])
    store.set(TEAM, "TOKEN", "fake-token", alice)
    store.add_recipient(bob.public, alice)
    roster_path = Path(store.recipients_path)
    ours = roster_path.read_bytes()
    store.add_recipient(carol.public, alice)  # stands for the merged roster: signed, its counter recorded
    merged = roster_path.read_bytes()
    roster_path.write_bytes(ours)  # as during a merge: the work tree still holds ours'
    monkeypatch.setattr(gitmerge, "_git_head", lambda root: "a" * 40)
    gitmerge._keep_merged_roster(store, alice, ours, merged)

    def seen() -> bytes | None:
        return gitmerge._MergeStore(store.root).read_roster_bytes()

    assert seen() == merged
    accepted = gitmerge._MergeStore(store.root).roster(alice.public)
    assert accepted is not None and accepted.find(carol.public) is not None
    with pytest.raises(RollbackError):  # a normal command reads the work tree, never the merge's roster
        Store(store.root).roster(alice.public)
    monkeypatch.setattr(gitmerge, "_git_head", lambda root: "b" * 40)
    assert seen() == ours  # another HEAD: another merge
    monkeypatch.setattr(gitmerge, "_git_head", lambda root: "a" * 40)
    other = recipients.parse(ours, "ours")
    Store(store.root).trust(alice.public).accept_revert(recipients.FILENAME, other.counter)
    assert seen() == ours  # the reader accepted ours' again since (accept-revert)
