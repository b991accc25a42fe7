"""``secretstore git resolve`` resolves only what the merge driver left for you in a merge in progress.

The unmerged marker is one line that anyone with push access can commit in front of any file
a trusted writer once signed. ``git resolve`` signs its result as you with a counter above
everything you read: resolving such a file would re-sign an old file (old recipients, old data
key, no "rotate needed" marks) as the newest version. Fake values only.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore import scopefile
from secretstore.scopefile import UNMERGED_MARKER
from secretstore.store import Store
from tests.sharing_helpers import Person, team_of
from tests.test_merge_replay import head, merge, needs_git, replay

Run = Callable[..., subprocess.CompletedProcess[bytes]]


def _refused(done: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 1 with one error line (and a hint), no traceback."""
    lines = done.stderr.splitlines()
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines[0].startswith("secretstore: error: ") and message in lines[0], done.stderr
    assert all(line.startswith(("secretstore: error: ", "secretstore: hint: ")) for line in lines), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def _shared(tmp_path: Path, names: tuple[str, ...], values: dict[str, str],
            readers: tuple[str, ...] = ("bob",)) -> dict[str, Person]:
    """Alice's team store holding ``values``, sealed to ``readers`` too and published; Bob has
    cloned it and trusts Alice."""
    people = team_of(tmp_path, names)
    alice, bob = people["alice"], people["bob"]
    for name, value in values.items():
        alice.ss("set", "team", f"--name={name}", f"--value={value}")
    for reader in readers:
        alice.ss("recipients", "add", people[reader].key, f"--label={reader}")
    alice.publish("the team store")
    bob.clone(people["origin"])  # type: ignore[arg-type]  (runs secretstore git setup)
    bob.ss("trust", alice.key)
    return people


def _resolve(person: Person, name: str, side: str) -> subprocess.CompletedProcess[str]:
    return person.ss("git", "resolve", "team", f"--name={name}", f"--{side}", ok=False)


# --- the reviewer's scenario: a plain commit of a marker in front of an old genuine file ---------


@needs_git
def test_a_committed_unmerged_file_with_an_old_genuine_body_is_not_resolved(tmp_path: Path) -> None:
    people = _shared(tmp_path, ("alice", "bob", "mallory"), {"API_KEY": "fake-v1"}, ("bob", "mallory"))
    alice, bob, mallory = people["alice"], people["bob"], people["mallory"]
    assert bob.ss("get", "team", "--name=API_KEY").stdout == "fake-v1"
    mallory.clone(people["origin"])  # type: ignore[arg-type]
    old = (alice.store / "team.toml").read_bytes()  # signed by Alice, sealed to Mallory

    alice.ss("recipients", "remove", mallory.key)
    alice.ss("set", "team", "--name=API_KEY", "--value=fake-v2")
    alice.publish("mallory leaves")

    mallory.pull()
    (mallory.store / "team.toml").write_bytes(UNMERGED_MARKER + b"API_KEY\n" + old)
    mallory.publish("routine update")  # a plain commit: no merge, no driver

    bob.pull()  # a fast-forward: the merge driver never runs
    blocked = bob.ss("get", "team", "--name=API_KEY", ok=False)
    assert blocked.returncode == 1 and "team.toml is unmerged" in blocked.stderr
    planted = (bob.store / "team.toml").read_bytes()
    for side in ("ours", "theirs"):
        done = _resolve(bob, "API_KEY", side)
        _refused(done, "team.toml is marked unmerged but git has no merge of it in progress: it was committed "
                       "that way (by whoever pushed it), not left by your merge; refusing to resolve it")
        assert "git log -- team.toml" in done.stderr
        assert (bob.store / "team.toml").read_bytes() == planted  # nothing written
    assert bob.git("status", "--porcelain").stdout == ""
    assert mallory.key not in bob.ss("recipients", "list").stdout
    # the way out the hint gives: the file from history, as Alice left it
    bob.git("checkout", "HEAD^", "--", "team.toml")
    assert bob.ss("get", "team", "--name=API_KEY").stdout == "fake-v2"
    sealed_to = [s.public_key for s in scopefile.parse((bob.store / "team.toml").read_bytes(), "t").recipients]
    assert mallory.key not in sealed_to


@needs_git
def test_a_marked_file_committed_as_ours_and_merged_again_is_not_resolved(tmp_path: Path) -> None:
    """The same plant, then a merge: the driver refuses a side that is itself unmerged and leaves
    ours untouched, so git's index does hold the path in conflict; the file is still the planted
    one (here with an old body Bob signed himself), not one the driver wrote."""
    people = _shared(tmp_path, ("alice", "bob", "mallory"), {"API_KEY": "fake-v1"})
    bob, mallory = people["bob"], people["mallory"]
    bob.ss("set", "team", "--name=API_KEY", "--value=fake-bob-old")
    bobs_old = (bob.store / "team.toml").read_bytes()
    bob.ss("set", "team", "--name=API_KEY", "--value=fake-bob-new")
    bob.publish("bob's values")
    mallory.clone(people["origin"])  # type: ignore[arg-type]
    base = head(mallory)

    (mallory.store / "team.toml").write_bytes(UNMERGED_MARKER + b"API_KEY\n" + bobs_old)
    mallory.publish("routine update")
    replay(mallory, "side", base, {"team.toml": bobs_old})  # any other change to team.toml

    bob.pull()
    merged = merge(bob, "side")
    assert merged.returncode != 0 and "team.toml" in bob.git("diff", "--name-only", "--diff-filter=U").stdout
    planted = (bob.store / "team.toml").read_bytes()
    assert planted == UNMERGED_MARKER + b"API_KEY\n" + bobs_old  # the driver left ours as it was
    done = _resolve(bob, "API_KEY", "ours")
    _refused(done, "team.toml is your side of the merge as it was committed, marked unmerged")
    assert (bob.store / "team.toml").read_bytes() == planted


@needs_git
@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_an_unmerged_body_signed_by_someone_else_is_not_resolved_during_a_merge(tmp_path: Path, side: str) -> None:
    """A real conflict is in progress, but the file in the work tree is not the driver's: a newer
    file Alice signed (trusted, counter above both sides) behind a marker. The driver signs as you."""
    people = _shared(tmp_path, ("alice", "bob"), {"TOKEN": "fake-v1"})
    alice, bob = people["alice"], people["bob"]
    alice.ss("set", "team", "--name=TOKEN", "--value=fake-alice")
    alice.publish("alice's token")
    for n in range(3):  # never pushed: a file of Alice's with a counter above both sides
        alice.ss("set", "team", "--name=TOKEN", f"--value=fake-alice-{n}")
    forged = UNMERGED_MARKER + b"TOKEN\n" + (alice.store / "team.toml").read_bytes()

    bob.ss("set", "team", "--name=TOKEN", "--value=fake-bob")
    bob.git("commit", "-q", "-am", "bob's token")
    clash = bob.pull("--no-rebase", ok=False)
    assert clash.returncode != 0 and (bob.store / "team.toml").read_bytes().startswith(UNMERGED_MARKER + b"TOKEN\n")
    (bob.store / "team.toml").write_bytes(forged)
    done = _resolve(bob, "TOKEN", side)
    _refused(done, "team.toml (unmerged) is signed by ")
    assert "not by you: the merge driver signs as you" in done.stderr
    assert (bob.store / "team.toml").read_bytes() == forged
    # the way out the hint gives: git merges the file again, and resolving works
    bob.git("checkout", "-m", "--", "team.toml")
    bob.ss("git", "resolve", "team", "--name=TOKEN", f"--{side}")
    assert bob.ss("get", "team", "--name=TOKEN").stdout == ("fake-bob" if side == "ours" else "fake-alice")


# --- the genuine flow still works -----------------------------------------------------------


@needs_git
@pytest.mark.parametrize("how", ["--no-rebase", "--rebase"])
def test_a_genuine_conflict_resolves_with_ours_and_theirs(tmp_path: Path, how: str) -> None:
    people = _shared(tmp_path, ("alice", "bob"), {"TOKEN": "fake-v1", "OTHER": "fake-other-v1"})
    alice, bob = people["alice"], people["bob"]
    bob.ss("set", "team", "--name=TOKEN", "--value=fake-bob-token")
    bob.ss("set", "team", "--name=OTHER", "--value=fake-bob-other")
    bob.publish("bob's values")
    alice.ss("set", "team", "--name=TOKEN", "--value=fake-alice-token")
    alice.ss("set", "team", "--name=OTHER", "--value=fake-alice-other")
    alice.git("commit", "-q", "-am", "alice's values")

    clash = alice.pull(how, ok=False)
    assert clash.returncode != 0
    assert {line.split()[2] for line in alice.git("ls-files", "-u", "--", "team.toml").stdout.splitlines()} == {
        "1", "2", "3"}
    # git's ours/theirs: in a rebase ours is upstream (Bob's), theirs the commit replayed (Alice's)
    ours, theirs = ("fake-alice", "fake-bob") if how == "--no-rebase" else ("fake-bob", "fake-alice")
    first = _resolve(alice, "TOKEN", "ours")
    assert first.returncode == 0 and "still in conflict: OTHER" in first.stdout, first.stderr
    second = _resolve(alice, "OTHER", "theirs")
    assert second.returncode == 0 and "no conflict left" in second.stdout, second.stderr
    assert alice.ss("get", "team", "--name=TOKEN").stdout == f"{ours}-token"
    assert alice.ss("get", "team", "--name=OTHER").stdout == f"{theirs}-other"
    alice.git("add", "team.toml")
    if how == "--no-rebase":
        alice.git("commit", "-q", "--no-edit")
    else:
        done = subprocess.run(["git", "-C", str(alice.store), "rebase", "--continue"], capture_output=True,
                              text=True, env={**alice.env, "GIT_EDITOR": "true"}, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    alice.git("push", "-q", "origin", "HEAD:main")
    bob.pull("--no-rebase")
    assert bob.ss("get", "team", "--name=TOKEN").stdout == f"{ours}-token"
    assert bob.ss("get", "team", "--name=OTHER").stdout == f"{theirs}-other"


# --- a marker without a newline -------------------------------------------------------------


def test_a_marker_without_a_newline_names_every_character() -> None:
    assert scopefile.unmerged_names(UNMERGED_MARKER + b"AAAx") == ["AAAx"]
    assert scopefile.unmerged_names(UNMERGED_MARKER + b"AAA B\nrest") == ["AAA", "B"]


@pytest.mark.parametrize("name", ["AAA", "AAAx"])
def test_resolving_a_marker_without_a_newline_is_a_one_line_error(
        store: Store, identity, cli_run: Run, name: str) -> None:  # type: ignore[no-untyped-def]
    from secretstore.store import TEAM

    store.set_many(TEAM, {"AAA": "fake-a"}, identity)
    path = Path(store.path(TEAM))
    path.write_bytes(UNMERGED_MARKER + b"AAAx")
    done = cli_run("git", "resolve", "team", "--name", name, "--ours")
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err and "internal error" not in err, err
    assert err.splitlines()[0] == ("secretstore: error: team.toml is only an unmerged marker line, with no file "
                                   "after it: the merge driver never writes that; refusing to resolve it")
    assert len(err.splitlines()) == 2 and err.splitlines()[1].startswith("secretstore: hint: ")
    assert path.read_bytes() == UNMERGED_MARKER + b"AAAx"
    read = cli_run("get", "team", "--name", "AAA")
    assert read.returncode == 1 and b"team.toml is unmerged: both sides of a git merge changed AAAx" in read.stderr
