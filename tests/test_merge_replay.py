"""Replays through the merge driver: an old, genuinely signed file brought back on a branch
whose merge base the attacker chose.

Someone with push access but no trusted key cannot sign anything; what they can do is
branch off an old commit, commit a file a trusted writer signed long ago, and get a
trusted user to merge that branch. The driver must never let such a branch undo a
removal (a recipient), a deletion or a purge (a value), nor drop a "rotate needed" mark.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from secretstore import envelope, gitmerge, recipients, scopefile
from secretstore.identity import Identity, load_identity
from secretstore.store import TEAM, Store
from tests.sharing_helpers import Person, team_of
from tests.test_gitmerge import restore, snapshot

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


# --- end to end, with real git ------------------------------------------------------------


def head(person: Person) -> str:
    return person.git("rev-parse", "HEAD").stdout.strip()


def replay(mallory: Person, branch: str, base: str, files: dict[str, bytes]) -> None:
    """Mallory (push access, no key) branches off ``base`` and commits old signed bytes on it."""
    mallory.git("fetch", "-q", "origin")
    mallory.git("checkout", "-q", "-b", branch, base)
    for relpath, data in files.items():
        (mallory.store / relpath).write_bytes(data)
    mallory.git("add", "-A")
    mallory.git("commit", "-q", "-m", "routine update")
    mallory.git("push", "-q", "origin", branch)


def merge(person: Person, branch: str) -> subprocess.CompletedProcess[str]:
    person.git("fetch", "-q", "origin")
    return person.git("merge", "--no-edit", f"origin/{branch}", ok=False)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Person]:
    people = team_of(tmp_path, ("alice", "bob", "carol", "mallory"))
    alice = people["alice"]
    alice.ss("set", "team", "--name=WANDB_API_KEY", "--value=fake-team-wandb")
    alice.publish("the team store")
    people["mallory"].clone(people["origin"])  # type: ignore[arg-type]
    return people  # type: ignore[return-value]


@needs_git
def test_a_replayed_roster_does_not_bring_back_a_removed_member(world) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol, mallory = world["alice"], world["bob"], world["carol"], world["mallory"]
    alice.ss("recipients", "add", carol.key, "--label=carol")
    alice.publish("carol joins")
    before_bob = head(alice)  # a roster without Bob: the merge base Mallory picks
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.publish("bob joins")
    with_bob = (alice.store / recipients.FILENAME).read_bytes()  # signed by Alice, lists Bob
    alice.ss("recipients", "remove", bob.key)
    alice.publish("bob leaves")

    replay(mallory, "attack", before_bob, {recipients.FILENAME: with_bob})
    merged = merge(alice, "attack")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    listed = alice.ss("recipients", "list").stdout
    assert bob.key not in listed and carol.key in listed
    roster = alice.store / recipients.FILENAME
    assert f'"{bob.key}"' in roster.read_text().split("[[recipients]]")[0]  # still revoked
    # what Alice writes next is sealed to the members, never to Bob
    alice.ss("set", "project", "--id=p1", "--name=DB_PASSWORD", "--value=fake-after-merge")
    sealed_to = [s.public_key for s in scopefile.parse((alice.store / "projects" / "p1.toml").read_bytes(),
                                                        "p1").recipients]
    assert bob.key not in sealed_to
    alice.publish("after the merge")
    bob.clone(world["origin"])  # type: ignore[arg-type]
    bob.ss("trust", alice.key)
    for scope in (("team", "--name=WANDB_API_KEY"), ("project", "--id=p1", "--name=DB_PASSWORD")):
        refused = bob.ss("get", *scope, ok=False)
        assert refused.returncode == 1 and "fake-" not in refused.stdout
        assert "not a recipient" in refused.stderr


@needs_git
def test_a_replayed_roster_keeps_a_member_ours_added_back(world) -> None:  # type: ignore[no-untyped-def]
    """The counterpart: a revocation does not undo your own later re-add, whatever the other side did."""
    alice, bob, carol, mallory = world["alice"], world["bob"], world["carol"], world["mallory"]
    alice.ss("recipients", "add", carol.key, "--label=carol")
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.ss("recipients", "remove", bob.key)
    alice.publish("bob leaves")
    carol.clone(world["origin"])  # type: ignore[arg-type]
    carol.ss("trust", alice.key)
    carol.ss("recipients", "add", mallory.key, "--label=a-colleague")  # Carol, a trusted writer
    carol.git("commit", "-q", "-am", "a colleague joins")
    carol.git("push", "-q", "origin", "HEAD:side")
    alice.ss("recipients", "add", bob.key, "--label=bob")  # Bob is back, on Alice's main
    alice.git("commit", "-q", "-am", "bob is back")
    merged = merge(alice, "side")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    listed = alice.ss("recipients", "list").stdout
    assert bob.key in listed and mallory.key in listed and carol.key in listed


def _replay_a_removed_name(world, how: tuple[str, ...]) -> tuple[Person, subprocess.CompletedProcess[str]]:  # type: ignore[no-untyped-def]
    alice, mallory = world["alice"], world["mallory"]
    before = head(alice)  # team.toml without the name: the merge base Mallory picks
    alice.ss("set", "team", "--name=LEAKED_TOKEN", "--value=fake-leaked-token")
    alice.publish("a token")
    leaked = (alice.store / "team.toml").read_bytes()
    alice.ss("delete", "team", "--name=LEAKED_TOKEN", *how)
    alice.ss("set", "team", "--name=OTHER", "--value=fake-other")
    alice.publish("the token leaked: removed")
    replay(mallory, "attack", before, {"team.toml": leaked})
    return alice, merge(alice, "attack")


@needs_git
@pytest.mark.parametrize("how", [(), ("--purge",)], ids=["deleted", "purged"])
def test_a_replayed_scope_file_does_not_bring_back_a_removed_value(world, how) -> None:  # type: ignore[no-untyped-def]
    alice, merged = _replay_a_removed_name(world, how)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    got = alice.ss("get", "team", "--name=LEAKED_TOKEN", ok=False)
    assert got.returncode == 1 and "fake-leaked-token" not in got.stdout
    assert alice.ss("get", "team", "--name=OTHER").stdout == "fake-other"
    if how:  # purged: not even its history came back
        assert "LEAKED_TOKEN" not in (alice.store / "team.toml").read_text()
        assert alice.ss("undelete", "team", "--name=LEAKED_TOKEN", ok=False).returncode == 1


@needs_git
def test_a_name_really_added_on_the_other_branch_still_merges(world) -> None:  # type: ignore[no-untyped-def]
    """The same shape as a replay (absent in base and ours, present in theirs) but a new write: kept."""
    alice, carol = world["alice"], world["carol"]
    alice.ss("recipients", "add", carol.key, "--label=carol")
    alice.ss("set", "team", "--name=GONE", "--value=fake-gone")
    alice.ss("delete", "team", "--name=GONE", "--purge")
    alice.publish("base")
    carol.clone(world["origin"])  # type: ignore[arg-type]
    carol.ss("trust", alice.key)
    carol.ss("set", "team", "--name=NEW_ON_SIDE", "--value=fake-new")
    carol.ss("set", "team", "--name=GONE", "--value=fake-gone-again")  # a new value: a new version
    carol.git("commit", "-q", "-am", "side")
    carol.git("push", "-q", "origin", "HEAD:side")
    alice.ss("set", "team", "--name=ON_MAIN", "--value=fake-main")
    alice.git("commit", "-q", "-am", "main")
    merged = merge(alice, "side")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    for name, value in {"NEW_ON_SIDE": "fake-new", "GONE": "fake-gone-again", "ON_MAIN": "fake-main"}.items():
        assert alice.ss("get", "team", f"--name={name}").stdout == value


@needs_git
def test_a_removal_on_the_other_branch_keeps_its_rotate_marks(world) -> None:  # type: ignore[no-untyped-def]
    """Theirs' version of a name is the one ours holds, marked "rotate needed" there: ours'
    history holding that version must not drop the mark (nor the removal)."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    alice.ss("recipients", "add", carol.key, "--label=carol")
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.publish("bob and carol")
    carol.clone(world["origin"])  # type: ignore[arg-type]
    carol.ss("trust", alice.key)
    carol.ss("recipients", "remove", bob.key)
    carol.git("commit", "-q", "-am", "bob leaves")
    carol.git("push", "-q", "origin", "HEAD:side")
    alice.ss("set", "team", "--name=ON_MAIN", "--value=fake-main")
    alice.git("commit", "-q", "-am", "main")
    merged = merge(alice, "side")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    file = scopefile.parse((alice.store / "team.toml").read_bytes(), "team.toml")
    # ON_MAIN too: ours set it still sealed to Bob (a value set after a removal is not marked:
    # test_a_value_set_where_a_member_removed_on_the_other_branch_could_read_it_is_rotate_needed)
    assert file.entries["WANDB_API_KEY"].rotate and file.entries["ON_MAIN"].rotate
    assert bob.key not in [s.public_key for s in file.recipients]
    assert bob.key not in alice.ss("recipients", "list").stdout


# --- the library: rotate marks through merged histories ---------------------------------


def _restore(store: Store, data: bytes) -> Store:
    """``data`` put back (``test_gitmerge.restore``), read by a fresh reader."""
    restore(store, data)
    return Store(store.root)


def _rotate_marks(data: bytes, identity: Identity) -> dict[str, bool]:
    file = scopefile.parse(data, "merged")
    body = envelope.check_signature(file, "merged")
    keys = envelope.unwrap(file, identity, "merged")
    assert keys is not None
    envelope.verify_mac(file, keys, "merged", body)
    return {name: entry.rotate for name, entry in file.entries.items()}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new second per write: versions made within one real second would otherwise share a time."""
    from secretstore import store as store_module

    ticks = iter(range(3600))

    def tick() -> str:
        n = next(ticks)
        return f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z"

    monkeypatch.setattr(store_module, "now", tick)


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize("remover", ["ours", "theirs"])
@pytest.mark.parametrize("change", ["rollback", "undelete"])
def test_rotate_needed_survives_a_merged_history(store, alice, bob, remover, change) -> None:  # type: ignore[no-untyped-def]
    """One side removes Bob (every name "rotate needed"); the other brings back an old value Bob
    could read (rollback, undelete). The merged value is that old value: still rotate needed."""
    store.add_recipient(bob.public, alice, TEAM)
    store.set(TEAM, "TOKEN", "fake-v1", alice)
    if change == "rollback":
        store.set(TEAM, "TOKEN", "fake-v2", alice)
    else:
        store.delete(TEAM, "TOKEN", alice)
    base = snapshot(store)
    store.remove_recipient(bob.public, alice, TEAM)
    removed = snapshot(store)
    assert _rotate_marks(removed, alice) == {"TOKEN": True}
    store = _restore(store, base)
    if change == "rollback":
        store.rollback(TEAM, "TOKEN", 1, alice)
    else:
        store.undelete(TEAM, "TOKEN", alice)
    brought_back = snapshot(store)
    store = _restore(store, base)
    ours, theirs = (removed, brought_back) if remover == "ours" else (brought_back, removed)
    merged, conflicts = gitmerge.merge_scope_files(base, ours, theirs, alice, "team.toml", store)
    assert conflicts == []
    file = scopefile.parse(merged, "merged")
    assert [s.public_key for s in file.recipients] == [alice.public_text]
    assert _rotate_marks(merged, alice) == {"TOKEN": True}


@pytest.mark.usefixtures("clock")
def test_a_deleted_name_is_not_brought_back_by_an_old_version_whatever_the_base(store, alice) -> None:  # type: ignore[no-untyped-def]
    """The library rule behind the tombstone case: theirs' value is a version ours' history already holds."""
    store.set(TEAM, "KEEP", "fake-keep", alice)
    before = snapshot(store)
    store.set(TEAM, "TOKEN", "fake-old", alice)
    old = snapshot(store)
    store.delete(TEAM, "TOKEN", alice)
    ours = snapshot(store)
    store = _restore(store, before)
    for base in (before, None):
        merged, conflicts = gitmerge.merge_scope_files(base, ours, old, alice, "team.toml", store)
        store = _restore(store, before)
        assert conflicts == []
        entry = scopefile.parse(merged, "merged").entries["TOKEN"]
        assert entry.current is None  # still deleted


@needs_git
def test_a_replayed_project_file_is_not_sealed_again_to_a_member_removed_from_it(world) -> None:  # type: ignore[no-untyped-def]
    """Bob leaves project p1 but stays on p2, so his key is not revoked store-wide; an old p1
    file sealed to him, replayed on a branch cut from before he was added to p1, used to
    count as "theirs added Bob" and the merged p1 was sealed to him again."""
    alice, bob, mallory = world["alice"], world["bob"], world["mallory"]
    alice.ss("set", "project", "--id=p1", "--name=DB_PASSWORD", "--value=fake-before-bob")
    alice.publish("p1")
    before_bob = head(alice)
    alice.ss("recipients", "add", bob.key, "--label=bob", "--project=p1")
    alice.ss("recipients", "add", bob.key, "--label=bob", "--project=p2")
    alice.publish("bob joins p1 and p2")
    with_bob = (alice.store / "projects" / "p1.toml").read_bytes()
    alice.ss("recipients", "remove", bob.key, "--project=p1")
    alice.ss("set", "project", "--id=p1", "--name=DB_PASSWORD", "--value=fake-rotated")
    alice.publish("bob leaves p1")

    replay(mallory, "attack", before_bob, {"projects/p1.toml": with_bob})
    merged = merge(alice, "attack")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    sealed_to = [s.public_key for s in scopefile.parse((alice.store / "projects" / "p1.toml").read_bytes(),
                                                        "p1").recipients]
    assert bob.key not in sealed_to
    assert alice.ss("get", "project", "--id=p1", "--name=DB_PASSWORD").stdout == "fake-rotated"


# --- offboarding on one branch, new values on the other ------------------------------------


def _rotate_needed(person: Person, *scope: str) -> dict[str, bool]:
    """``list --json``'s "rotate needed" per live name."""
    listed = json.loads(person.ss("list", *scope, "--json").stdout)
    return {row["name"]: row["rotate_needed"] for row in listed}


def _data_key(data: bytes, person: Person) -> bytes | None:
    """The data key ``person``'s identity opens in a scope file (None: not sealed to them)."""
    keys = envelope.unwrap(scopefile.parse(data, "file"), load_identity(person.env["SECRETSTORE_IDENTITY"]), "file")
    return None if keys is None else keys.data_key


def _bob_on_both_sides(world) -> tuple[Person, Person, Person]:  # type: ignore[no-untyped-def]
    """Alice on main and Carol on a clone of it, with Bob a store-wide member on both."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    alice.ss("recipients", "add", carol.key, "--label=carol")
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.ss("set", "team", "--name=TOKEN", "--value=fake-token-v1")
    alice.publish("bob and carol")
    carol.clone(world["origin"])  # type: ignore[arg-type]
    carol.ss("trust", alice.key)
    return alice, bob, carol


def _commit_side(carol: Person) -> None:
    carol.git("add", "-A")
    carol.git("commit", "-q", "-m", "side")
    carol.git("push", "-q", "origin", "HEAD:side")


@needs_git
@pytest.mark.parametrize("remover", ["ours", "theirs"])
def test_a_value_set_where_a_member_removed_on_the_other_branch_could_read_it_is_rotate_needed(  # type: ignore[no-untyped-def]
    world, remover,
) -> None:
    """One branch removes Bob (every name there "rotate needed"); the other, still sealed to
    Bob, sets a new value and a new name. Bob could read both: after the merge they are
    rotate needed too, and the merged file is sealed under a data key Bob never had. A
    value the removing branch set after the removal is not marked."""
    alice, bob, carol = _bob_on_both_sides(world)

    def remove(person: Person) -> None:
        person.ss("recipients", "remove", bob.key)
        person.ss("set", "team", "--name=SET_AFTER", "--value=fake-after")  # Bob never saw it

    def set_new(person: Person) -> None:
        person.ss("set", "team", "--name=TOKEN", "--value=fake-token-v2")  # sealed to Bob there
        person.ss("set", "team", "--name=NEW_TOKEN", "--value=fake-new")

    (remove if remover == "theirs" else set_new)(carol)
    _commit_side(carol)
    (remove if remover == "ours" else set_new)(alice)
    alice.git("commit", "-q", "-am", "main")
    merged = merge(alice, "side")
    assert merged.returncode == 0, merged.stdout + merged.stderr

    assert alice.ss("get", "team", "--name=TOKEN").stdout == "fake-token-v2"
    assert _rotate_needed(alice, "team") == {
        "NEW_TOKEN": True, "SET_AFTER": False, "TOKEN": True, "WANDB_API_KEY": True,
    }
    doctor = alice.ss("doctor", ok=False).stdout
    assert "rotate needed (a removed recipient could read them): NEW_TOKEN, TOKEN, WANDB_API_KEY" in doctor
    # Bob reads the merged values neither through a stanza nor with a data key he held
    data = (alice.store / "team.toml").read_bytes()
    assert bob.key not in [s.public_key for s in scopefile.parse(data, "team.toml").recipients]
    sealed_to_bob = alice.git("show", f"{'origin/side' if remover == 'ours' else 'HEAD^1'}:team.toml").stdout
    bobs_key = _data_key(sealed_to_bob.encode(), bob)
    assert bobs_key is not None and bobs_key != _data_key(data, alice)


@needs_git
@pytest.mark.parametrize("remover", ["ours", "theirs"])
@pytest.mark.parametrize("kept", ["ours", "theirs"])
def test_resolving_a_conflict_marks_the_value_a_removed_member_could_read(world, remover, kept) -> None:  # type: ignore[no-untyped-def]
    """Both branches set TOKEN, one after removing Bob: the value kept by ``git resolve`` is
    rotate needed exactly when it is the other branch's, which Bob could read."""
    alice, bob, carol = _bob_on_both_sides(world)
    for person, side in ((carol, "theirs"), (alice, "ours")):
        if side == remover:
            person.ss("recipients", "remove", bob.key)
        person.ss("set", "team", "--name=TOKEN", f"--value=fake-token-{side}")
        if side == "theirs":
            _commit_side(person)
    alice.git("commit", "-q", "-am", "main")
    merged = merge(alice, "side")
    assert merged.returncode != 0 and "TOKEN" in (alice.store / "team.toml").read_text().splitlines()[0]
    alice.ss("git", "resolve", "team", "--name=TOKEN", f"--{kept}")
    alice.git("add", "team.toml")
    assert alice.ss("get", "team", "--name=TOKEN").stdout == f"fake-token-{kept}"
    assert _rotate_needed(alice, "team") == {"TOKEN": kept != remover, "WANDB_API_KEY": True}


@pytest.mark.usefixtures("clock")
def test_a_reader_the_merge_drops_gets_no_data_key_and_what_it_read_is_rotate_needed(store, alice, bob) -> None:  # type: ignore[no-untyped-def]
    """Theirs sealed the file to Bob (an add keeps the data key) and set a value there; where the
    merge runs Bob is revoked, so the merge drops him. Both sides still share the data key his
    stanza in theirs opens: the merged file must not keep it, and what Bob could read in theirs
    is rotate needed (what only ours held is not)."""
    store.set(TEAM, "KEPT", "fake-kept", alice)
    base = snapshot(store)
    store.add_recipient(bob.public, alice, TEAM)
    store.set(TEAM, "BOB_SAW", "fake-bob-saw", alice)
    theirs = snapshot(store)
    store = _restore(store, base)
    store.set(TEAM, "AFTER", "fake-after", alice)
    ours = snapshot(store)
    store = _restore(store, base)
    store.trust(alice.public).untrust_key(bob.public)
    merged, conflicts = gitmerge.merge_scope_files(base, ours, theirs, alice, "team.toml", store)
    assert conflicts == []
    assert [s.public_key for s in scopefile.parse(merged, "merged").recipients] == [alice.public_text]
    bobs = envelope.unwrap(scopefile.parse(theirs, "theirs"), bob, "theirs")
    mine = envelope.unwrap(scopefile.parse(merged, "merged"), alice, "merged")
    assert bobs is not None and mine is not None and bobs.data_key != mine.data_key
    assert _rotate_marks(merged, alice) == {"AFTER": False, "BOB_SAW": True, "KEPT": True}
