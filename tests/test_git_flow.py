"""The team flow end to end, with real git and the real console script.

Alice inits, Bob inits; Alice adds Bob (store-wide) and a cluster node (its
cluster only) and pushes; Bob clones, reads, sets; the node reads its cluster
with SECRETSTORE_KEY only; two people add different names to one scope at once
and git merges through the driver; the same name on both sides is a conflict.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import console_script

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


class Person:
    def __init__(self, root: Path, name: str, base_env: dict[str, str]) -> None:
        self.name = name
        self.store = root / name / "store"
        self.env = dict(base_env)
        self.env["SECRETSTORE_DIR"] = str(self.store)
        self.env["SECRETSTORE_IDENTITY"] = str(root / name / "identity")
        self.env["GIT_AUTHOR_NAME"] = self.env["GIT_COMMITTER_NAME"] = name
        self.env["GIT_AUTHOR_EMAIL"] = self.env["GIT_COMMITTER_EMAIL"] = f"{name}@example.invalid"

    def ss(self, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full = {**self.env, **(env or {})}
        done = subprocess.run([console_script(), *args], env=full, capture_output=True, text=True,
                              timeout=60, check=False)
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def git(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["git", "-C", str(self.store), *args], env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done


@pytest.fixture
def team(tmp_path: Path) -> tuple[Person, Person, Path]:
    home = tmp_path / "home"
    home.mkdir()
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("SECRETSTORE_", "GIT_"))}
    base.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", XDG_CONFIG_HOME=str(home / ".config"))
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--bare", "-q", "-b", "main", str(origin)], env=base, check=True)
    return Person(tmp_path, "alice", base), Person(tmp_path, "bob", base), origin


def test_two_people_and_a_cluster_node(team, tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice, bob, origin = team
    alice_key = alice.ss("init").stdout.strip()
    bob_key = bob.ss("init").stdout.strip()
    node = Person(tmp_path, "node", bob.env)
    node_key = node.ss("init").stdout.strip()
    node_text = Path(node.env["SECRETSTORE_IDENTITY"]).read_text()
    assert len({alice_key, bob_key, node_key}) == 3

    # Alice starts the store as a git repository.
    alice.store.mkdir(parents=True)
    alice.git("init", "-q", "-b", "main")
    alice.ss("git", "setup")
    assert "team.toml merge=secretstore" in (alice.store / ".gitattributes").read_text()
    alice.ss("set", "team", "--name=WANDB_API_KEY", "--value=team-wandb")
    alice.ss("set", "cluster", "--id=gpu-a", "--name=HF_TOKEN", "--value=gpu-hf")
    alice.ss("recipients", "add", bob_key, "--label=bob")
    alice.ss("recipients", "add", node_key, "--label=gpu-a-node", "--cluster=gpu-a")
    listed = alice.ss("recipients", "list").stdout
    assert f"| {bob_key} | bob        | all (store-wide) |" in listed
    assert f"| {node_key} | gpu-a-node | cluster gpu-a    |" in listed
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "team store")
    alice.git("remote", "add", "origin", str(origin))
    alice.git("push", "-q", "origin", "main")
    assert not any(p.name == "identity" for p in alice.store.rglob("*"))  # never in the store

    # Bob clones. Until he trusts Alice (after checking her key with her), her files are refused.
    subprocess.run(["git", "clone", "-q", str(origin), str(bob.store)], env=bob.env, check=True)
    refused = bob.ss("get", "team", "--name=WANDB_API_KEY", ok=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"this store holds files written by {alice_key}" in refused.stderr  # told once
    assert f"team.toml is signed by {alice_key}, whom you do not trust" in refused.stderr
    assert f"secretstore trust {alice_key}" in refused.stderr
    again = bob.ss("get", "team", "--name=WANDB_API_KEY", ok=False)
    assert "this store holds files written by" not in again.stderr
    bob.ss("trust", alice_key, "--label=alice")
    assert "warning: git: the merge driver is not set up here" in bob.ss("doctor").stdout
    bob.ss("git", "setup")
    assert bob.git("status", "--porcelain").stdout == ""  # .gitattributes already committed
    checked = bob.ss("doctor", "--verify").stdout
    assert "ok: git: merge driver set up" in checked and "error" not in checked, checked
    assert bob.ss("get", "team", "--name=WANDB_API_KEY").stdout == "team-wandb"
    assert bob.ss("get", "cluster", "--id=gpu-a", "--name=HF_TOKEN").stdout == "gpu-hf"
    bob.ss("set", "project", "--id=prj42", "--name=DB_PASSWORD", "--value=bob-db")
    bob.git("add", "-A")
    bob.git("commit", "-q", "-m", "project prj42")
    bob.git("push", "-q", "origin", "main")

    # Alice reads Bob's project: she added Bob, so his writes count for her without a step.
    alice.git("pull", "-q", "--no-rebase", "origin", "main")
    assert alice.ss("get", "project", "--id=prj42", "--name=DB_PASSWORD").stdout == "bob-db"

    # The cluster node: a clone, SECRETSTORE_KEY and SECRETSTORE_TRUST only; no identity file anywhere.
    node_store = tmp_path / "node" / "store"
    subprocess.run(["git", "clone", "-q", str(origin), str(node_store)], env=node.env, check=True)
    Path(node.env["SECRETSTORE_IDENTITY"]).unlink()
    key_env = {"SECRETSTORE_KEY": node_text, "SECRETSTORE_DIR": str(node_store), "SECRETSTORE_TRUST": alice_key}
    assert node.ss("get", "cluster", "--id=gpu-a", "--name=HF_TOKEN", env=key_env).stdout == "gpu-hf"
    denied = node.ss("get", "team", "--name=WANDB_API_KEY", env=key_env, ok=False)
    assert denied.returncode == 1
    assert "secretstore: error: not a recipient of team\n" in denied.stderr
    assert f"secretstore: hint: ask an owner to run: secretstore recipients add {node_key} --team" in denied.stderr
    ran = node.ss("exec", "--cluster=gpu-a", "--", "sh", "-c", 'printf %s "$HF_TOKEN"', env=key_env)
    assert ran.stdout == "gpu-hf" and "skipped team: not a recipient" in ran.stderr
    ran = node.ss("exec", "--no-team", "--cluster=gpu-a", "--", "sh", "-c", 'printf %s "$HF_TOKEN"', env=key_env)
    assert (ran.stdout, ran.stderr) == ("gpu-hf", "")
    assert not Path(node.env["SECRETSTORE_IDENTITY"]).exists()
    # without SECRETSTORE_TRUST the node cannot tell writers apart: said once, an error with --strict
    unverified = {**key_env, "SECRETSTORE_TRUST": ""}
    warned = node.ss("exec", "--cluster=gpu-a", "--", "true", env=unverified)
    assert warned.stderr.count("writers are not verified") == 1
    strict = node.ss("exec", "--strict", "--cluster=gpu-a", "--", "true", env=unverified, ok=False)
    assert strict.returncode == 1 and "cannot be verified" in strict.stderr

    # Alice and Bob add different names to the team scope at the same time.
    alice.ss("set", "team", "--name=FROM_ALICE", "--value=a")
    alice.git("commit", "-q", "-am", "alice adds a name")
    bob.ss("set", "team", "--name=FROM_BOB", "--value=b")
    bob.git("commit", "-q", "-am", "bob adds a name")
    bob.git("push", "-q", "origin", "main")
    merged = alice.git("pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    assert "CONFLICT" not in merged.stdout + merged.stderr
    want = {"WANDB_API_KEY": "team-wandb", "FROM_ALICE": "a", "FROM_BOB": "b"}
    for name, value in want.items():
        assert alice.ss("get", "team", f"--name={name}").stdout == value
    alice.git("push", "-q", "origin", "main")
    bob.git("pull", "-q", "--no-rebase", "origin", "main")
    assert bob.ss("get", "team", "--name=FROM_ALICE").stdout == "a"

    def git_lines(person) -> list[tuple[str, str, list[str], str]]:  # type: ignore[no-untyped-def]
        """The audit log's lines for what git changed in ``person``'s files (names, never values)."""
        rows = json.loads(person.ss("audit", "--json").stdout)
        return [(r["command"], r["scope"], r["names"], r.get("detail", "")) for r in rows
                if r["command"].startswith("git ")]

    assert git_lines(alice) == [("git merge", "team", ["FROM_BOB"], "")]  # what the merge brought into her file

    # The same name changed on both sides, plus an unrelated new name on each: only the one
    # name is left in conflict, every other entry is merged, and git reports the conflict.
    alice.ss("set", "team", "--name=SHARED_TOKEN", "--value=alice-version")
    alice.ss("set", "team", "--name=ALICE_ONLY", "--value=fake-alice-only")
    alice.git("commit", "-q", "-am", "alice token")
    bob.ss("set", "team", "--name=SHARED_TOKEN", "--value=bob-version")
    bob.ss("set", "team", "--name=COMET_API_KEY", "--value=fake-comet")
    bob.git("commit", "-q", "-am", "bob token")
    bob.git("push", "-q", "origin", "main")
    clash = alice.git("pull", "--no-rebase", "--no-edit", "origin", "main", ok=False)
    assert clash.returncode != 0
    assert "both sides changed SHARED_TOKEN; every other entry was merged" in clash.stderr + clash.stdout
    assert "CONFLICT" in clash.stdout + clash.stderr
    assert "team.toml" in alice.git("diff", "--name-only", "--diff-filter=U").stdout
    # while it is unmerged, readers refuse it instead of silently using one side
    blocked = alice.ss("get", "team", "--name=COMET_API_KEY", ok=False)
    assert blocked.returncode == 1 and "team.toml is unmerged" in blocked.stderr
    assert "secretstore git resolve" in blocked.stderr
    assert alice.ss("exec", "--", "true", ok=False).returncode == 1
    assert "is unmerged" in alice.ss("doctor", ok=False).stdout
    resolved = alice.ss("git", "resolve", "team", "--name=SHARED_TOKEN", "--theirs")
    assert "no conflict left" in resolved.stdout
    assert git_lines(alice)[1:] == [("git merge", "team", ["COMET_API_KEY"], "unmerged: SHARED_TOKEN"),
                                    ("git resolve", "team", ["SHARED_TOKEN"], "--theirs")]
    for name, value in {"SHARED_TOKEN": "bob-version", "COMET_API_KEY": "fake-comet",
                        "ALICE_ONLY": "fake-alice-only", "FROM_BOB": "b"}.items():
        assert alice.ss("get", "team", f"--name={name}").stdout == value
    alice.git("add", "team.toml")
    alice.git("commit", "-q", "--no-edit")
    alice.git("push", "-q", "origin", "main")
    bob.git("pull", "-q", "--no-rebase", "origin", "main")
    assert bob.ss("get", "team", "--name=ALICE_ONLY").stdout == "fake-alice-only"


def test_the_walkthrough_for_users_who_kept_the_default_store(team, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """docs/sharing.md's walkthrough, verbatim: no SECRETSTORE_DIR, a .secretstore.toml naming the checkout."""
    alice, bob, origin = team
    for person in (alice, bob):
        del person.env["SECRETSTORE_DIR"]
        person.env["XDG_DATA_HOME"] = str(tmp_path / person.name / "data")  # the default store lives here

    def ss(person: Person, cwd: Path, *args: str) -> str:
        done = subprocess.run([console_script(), *args], env=person.env, cwd=cwd, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, (person.name, args, done.stderr)
        return done.stdout

    def git(person: Person, cwd: Path, *args: str) -> None:
        subprocess.run(["git", *args], env=person.env, cwd=cwd, capture_output=True, timeout=60, check=True)

    alice_key = ss(alice, tmp_path, "init").strip()
    bob_key = ss(bob, tmp_path, "init").strip()
    git(alice, tmp_path, "init", "-q", "-b", "main", "team-secrets")
    checkout = tmp_path / "team-secrets"
    (checkout / ".secretstore.toml").write_text('store = "."\n')
    ss(alice, checkout, "git", "setup")
    ss(alice, checkout, "set", "team", "--name", "WANDB_API_KEY", "--value", "fake-wandb")
    ss(alice, checkout, "recipients", "add", bob_key, "--label", "bob")
    assert ss(alice, checkout, "where").startswith(f"store: {checkout} (from {checkout / '.secretstore.toml'})")
    git(alice, checkout, "add", "-A")
    git(alice, checkout, "commit", "-q", "-m", "team store")
    git(alice, checkout, "remote", "add", "origin", str(origin))
    git(alice, checkout, "push", "-q", "origin", "main")
    assert not (tmp_path / "alice" / "data" / "secretstore").exists()  # the default store was left alone

    git(bob, tmp_path / "bob", "clone", "-q", str(origin), "team-secrets")
    clone = tmp_path / "bob" / "team-secrets"
    ss(bob, clone, "git", "setup")
    ss(bob, clone, "trust", alice_key, "--label", "alice")  # after checking Alice's key with her
    assert ss(bob, clone, "get", "team", "--name", "WANDB_API_KEY") == "fake-wandb"
    ss(bob, clone, "set", "project", "--id", "prj42", "--name", "DB_PASSWORD", "--value", "fake-db")
    assert (clone / "projects" / "prj42.toml").exists()
    assert not (tmp_path / "bob" / "data" / "secretstore").exists()


@pytest.mark.parametrize("attributes", ["setup", "without -text"])
def test_a_clone_with_autocrlf_reads_the_files_byte_for_byte(team, attributes: str) -> None:  # type: ignore[no-untyped-def]
    """Windows' git converts text files' line ends on checkout (core.autocrlf=true): a scope
    file's signature covers its bytes, so a converted file would be refused. 'git setup'
    marks the store's files -text, so git leaves them as they are; the negative control
    (the driver lines without -text) shows the conversion and the refusal."""
    alice, bob, origin = team
    alice_key = alice.ss("init").stdout.strip()
    bob_key = bob.ss("init").stdout.strip()
    alice.store.mkdir(parents=True)
    alice.git("init", "-q", "-b", "main")
    alice.ss("git", "setup")
    alice.ss("recipients", "add", bob_key, "--label=bob")
    attributes_file = alice.store / ".gitattributes"
    assert "team.toml merge=secretstore -text" in attributes_file.read_text()
    if attributes == "without -text":
        attributes_file.write_text(attributes_file.read_text().replace(" -text", ""))
    alice.ss("set", "team", "--name=WANDB_API_KEY", "--value=fake-team-wandb")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "team store")
    alice.git("remote", "add", "origin", str(origin))
    alice.git("push", "-q", "origin", "main")
    subprocess.run(["git", "-c", "core.autocrlf=true", "clone", "-q", str(origin), str(bob.store)],
                   env=bob.env, check=True)
    converted = b"\r\n" in (bob.store / "team.toml").read_bytes()
    bob.ss("trust", alice_key, "--label=alice")
    got = bob.ss("get", "team", "--name=WANDB_API_KEY", ok=False)
    if attributes == "setup":
        assert not converted
        assert (got.returncode, got.stdout, got.stderr) == (0, "fake-team-wandb", "")
    else:
        assert converted
        assert got.returncode != 0 and got.stdout == ""


def test_git_setup_brings_older_rules_up_to_date_in_place(team) -> None:  # type: ignore[no-untyped-def]
    """A store set up by 0.2.0 has the driver lines without -text: doctor says so, and setup
    rewrites those lines where they stand, keeping the user's own lines, once."""
    alice, _bob, _origin = team
    alice.ss("init")
    alice.store.mkdir(parents=True)
    alice.git("init", "-q", "-b", "main")
    old = ("*.md text\n# secretstore: merge scope files entry by entry (run 'secretstore git setup' in each clone)\n"
           "team.toml merge=secretstore\nprojects/*.toml merge=secretstore\n"
           "clusters/*.toml merge=secretstore\nrecipients.toml merge=secretstore\n")
    (alice.store / ".gitattributes").write_text(old)
    alice.ss("set", "team", "--name=A", "--value=fake-a")
    alice.git("config", "merge.secretstore.driver", "secretstore git merge-driver %O %A %B %P")
    assert "warning: git: the merge driver is not set up here" in alice.ss("doctor").stdout
    assert "wrote .gitattributes" in alice.ss("git", "setup").stderr
    assert (alice.store / ".gitattributes").read_text() == "*.md text\n" + "".join(
        line + "\n" for line in (
            "# secretstore: merge scope files entry by entry, bytes as they are "
            "(run 'secretstore git setup' in each clone)",
            "team.toml merge=secretstore -text", "projects/*.toml merge=secretstore -text",
            "clusters/*.toml merge=secretstore -text", "recipients.toml merge=secretstore -text",
        ))
    assert "ok: git: merge driver set up" in alice.ss("doctor").stdout
    assert "wrote .gitattributes" not in alice.ss("git", "setup").stderr
