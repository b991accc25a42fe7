"""A shared store attacked by someone who can push to its repository but holds no key to any scope.

Each person has a home of their own (identity, trust state, cache) and a clone; the
attacker ("mallory") uses the real console script in her own clone, as she would,
and pushes. Each attack ends in a one-line refusal on the owner's side and no value
of the attacker's used, no value exposed to her, and no reader added. The legitimate
flows keep working with no step beyond trusting a teammate's key once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.sharing_helpers import Person, team_of

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def world(tmp_path: Path) -> dict[str, object]:
    """alice's team store (team and cluster gpu-a) pushed to origin; mallory holds a clone, no key."""
    people = team_of(tmp_path, ("alice", "bob", "carol", "mallory", "node"))
    alice = people["alice"]
    alice.ss("set", "team", "--name=WANDB_API_KEY", "--value=fake-team-wandb")
    alice.ss("set", "cluster", "--id=gpu-a", "--name=HF_TOKEN", "--value=fake-gpu-hf")
    alice.publish("the team store")
    people["mallory"].clone(people["origin"])  # type: ignore[attr-defined]  # push access, no key to any scope
    return people


def mallory_writes_team(mallory: Person, alice_key: str, names: dict[str, str]) -> None:
    """Mallory replaces team.toml with a file of her own, sealed to Alice's public key (which is public)."""
    mallory.ss("trust", alice_key, ok=False)  # whatever her own reader needs to write into the store
    (mallory.store / "team.toml").unlink()
    for name, value in names.items():
        mallory.ss("set", "team", f"--name={name}", f"--value={value}")
    mallory.ss("recipients", "add", alice_key, "--team")
    mallory.publish("routine update")


def env_of(person: Person, *args: str) -> dict[str, str]:
    done = person.ss("exec", *args, "--", "env", ok=False)
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("secretstore: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- attacks ------------------------------------------------------------------------------


def test_a_forged_scope_file_is_refused_and_never_injected(world) -> None:  # type: ignore[no-untyped-def]
    alice, mallory = world["alice"], world["mallory"]
    evil = mallory.store.parent / "evil"
    mallory_writes_team(mallory, alice.key, {"PATH": str(evil), "LD_PRELOAD": f"{evil}/x.so",
                                              "PYTHONPATH": str(evil), "WANDB_API_KEY": "fake-mallory"})
    alice.pull()
    for args in (["get", "team", "--name=WANDB_API_KEY"], ["exec", "--", "true"], ["export"],
                 ["history", "team", "--name=WANDB_API_KEY"], ["undelete", "team", "--name=WANDB_API_KEY"]):
        done = alice.ss(*args, ok=False)
        assert done.returncode == 1 and "fake-mallory" not in done.stdout
        assert f"team.toml is signed by {mallory.key}" in one_line_error(done.stderr)
        assert "whom you do not trust" in done.stderr
    env = env_of(alice)
    assert env.get("WANDB_API_KEY") != "fake-mallory" and str(evil) not in env.get("PATH", "")
    # nothing honest is written into it either: a set would seal the value to Mallory
    done = alice.ss("set", "team", "--name=NEW_TOKEN", "--value=fake-alice-new", ok=False)
    assert done.returncode == 1 and "whom you do not trust" in done.stderr
    assert "fake-alice-new" not in (alice.store / "team.toml").read_text()


def test_a_forged_recipients_line_never_seals_a_new_scope_to_the_attacker(world) -> None:  # type: ignore[no-untyped-def]
    alice, mallory = world["alice"], world["mallory"]
    mallory.ss("trust", alice.key, ok=False)
    mallory.ss("recipients", "add", mallory.key, ok=False)  # her own reader may refuse; write it by hand too
    roster = mallory.store / "recipients.toml"
    if not roster.exists():
        roster.write_text('format = "secretstore-recipients/v1"\n'
                          f'recipients = [{{ public_key = "{mallory.key}" }}]\n')
    mallory.publish("add a teammate")
    alice.pull()
    done = alice.ss("set", "project", "--id=new", "--name=DB_PASSWORD", "--value=fake-db", ok=False)
    assert done.returncode == 1, done.stdout
    one_line_error(done.stderr)
    project = alice.store / "projects" / "new.toml"
    assert not project.exists() or mallory.key not in project.read_text()


@pytest.mark.parametrize("how", ["--no-rebase", "--rebase"])
def test_a_one_sided_recipient_through_a_merge_is_refused(world, how) -> None:  # type: ignore[no-untyped-def]
    """Mallory's side adds her as a recipient; Alice's ordinary pull must not re-seal Alice's values to her."""
    alice, mallory = world["alice"], world["mallory"]
    alice.ss("set", "team", "--name=LOCAL_ONLY", "--value=fake-alice-local")
    alice.git("commit", "-q", "-am", "local change")
    mallory_writes_team(mallory, alice.key, {"WANDB_API_KEY": "fake-mallory"})
    pulled = alice.pull(how, ok=False)
    assert pulled.returncode != 0 and "whom you do not trust" in pulled.stdout + pulled.stderr
    # whatever git left in the work tree (one side behind the unmerged marker: Alice's in a merge,
    # Mallory's upstream in a rebase), nothing Alice signed was re-sealed to Mallory
    from secretstore import scopefile

    data = (alice.store / "team.toml").read_bytes()
    assert data.startswith(scopefile.UNMERGED_MARKER)
    file = scopefile.parse(data[data.index(b"\n") + 1 :], "team.toml")
    if file.signer == alice.key:
        assert [stanza.public_key for stanza in file.recipients] == [alice.key]
    else:
        assert file.signer == mallory.key
    # and Alice's reads refuse the unmerged file until she keeps her side
    assert alice.ss("get", "team", "--name=LOCAL_ONLY", ok=False).returncode == 1


def test_a_merge_with_no_base_and_different_recipients_is_a_conflict(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice, bob = world["alice"], world["bob"]
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.publish("bob joins")
    bob.clone(world["origin"])
    bob.ss("trust", alice.key)
    # both create project p1 on their own: no common ancestor, different recipients
    alice.ss("set", "project", "--id=p1", "--name=A", "--value=fake-a")
    alice.ss("recipients", "add", world["carol"].key, "--project=p1")
    alice.git("add", "-A")
    alice.git("commit", "-q", "-m", "alice p1")
    bob.ss("set", "project", "--id=p1", "--name=B", "--value=fake-b")
    bob.publish("bob p1")
    pulled = alice.pull("--no-rebase", ok=False)
    assert pulled.returncode != 0
    assert "no common ancestor and are sealed to different recipients" in pulled.stdout + pulled.stderr


def test_replaying_an_old_file_after_a_removal_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    alice, bob = world["alice"], world["bob"]
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.publish("bob joins")
    old = (alice.store / "team.toml").read_bytes()  # Bob kept this copy, sealed to him
    alice.ss("recipients", "remove", bob.key)
    alice.publish("bob leaves")
    bob.clone(world["origin"])
    (bob.store / "team.toml").write_bytes(old)  # pushes the old version back
    bob.publish("restore")
    alice.pull()
    done = alice.ss("get", "team", "--name=WANDB_API_KEY", ok=False)
    line = one_line_error(done.stderr)
    assert "older than version" in line and "rolled back" in line
    assert "secretstore accept-revert team" in done.stderr
    done = alice.ss("set", "team", "--name=AFTER", "--value=fake-after-removal", ok=False)
    assert done.returncode == 1 and "rolled back" in done.stderr
    assert (alice.store / "team.toml").read_bytes() == old  # nothing written into it


def test_a_file_forged_by_a_removed_member_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    alice, bob = world["alice"], world["bob"]
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.publish("bob joins")
    alice.ss("recipients", "remove", bob.key)
    alice.publish("bob leaves")
    bob.clone(world["origin"])
    mallory_writes_team(bob, alice.key, {"WANDB_API_KEY": "fake-from-bob"})  # signed by Bob, sealed to both
    alice.pull()
    done = alice.ss("get", "team", "--name=WANDB_API_KEY", ok=False)
    assert "fake-from-bob" not in done.stdout
    assert f"team.toml is signed by {bob.key} (bob), who was removed from this store" in one_line_error(done.stderr)


def test_a_node_with_secretstore_trust_refuses_a_forged_cluster_file(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice, mallory, node = world["alice"], world["mallory"], world["node"]
    alice.ss("recipients", "add", node.key, "--cluster=gpu-a", "--label=gpu-a-node")
    alice.publish("node")
    node_text = Path(node.env["SECRETSTORE_IDENTITY"]).read_text()
    node.clone(world["origin"])
    key_env = {"SECRETSTORE_KEY": node_text, "SECRETSTORE_TRUST": alice.key,
               "SECRETSTORE_IDENTITY": str(tmp_path / "none")}
    assert node.ss("get", "cluster", "--id=gpu-a", "--name=HF_TOKEN", env=key_env).stdout == "fake-gpu-hf"
    mallory.pull()
    mallory.ss("trust", alice.key, ok=False)
    (mallory.store / "clusters" / "gpu-a.toml").unlink()
    mallory.ss("set", "cluster", "--id=gpu-a", "--name=HF_TOKEN", "--value=fake-mallory-hf")
    mallory.ss("recipients", "add", node.key, "--cluster=gpu-a")
    mallory.publish("rotate token")
    node.pull()
    done = node.ss("exec", "--cluster=gpu-a", "--", "sh", "-c", 'printf %s "$HF_TOKEN"', env=key_env, ok=False)
    assert done.returncode == 1 and "fake-mallory-hf" not in done.stdout
    assert f"clusters/gpu-a.toml is signed by {mallory.key}" in one_line_error(done.stderr)


def test_a_newcomer_who_trusts_nobody_cannot_start_a_second_store_in_a_shared_one(world) -> None:  # type: ignore[no-untyped-def]
    alice, bob = world["alice"], world["bob"]
    bob.clone(world["origin"])
    done = bob.ss("set", "project", "--id=prj99", "--name=DB", "--value=fake-bob-db", ok=False)
    assert done.returncode == 1
    line = one_line_error(done.stderr)
    assert f"this store holds files signed by {alice.key}" in line and "none of which you have accepted" in line
    assert "secretstore trust KEY" in done.stderr
    assert not (bob.store / "projects" / "prj99.toml").exists()
    # once Bob trusts Alice, his new file joins her store (same store id), and Alice, trusting Bob, reads it
    bob.ss("trust", alice.key, "--label=alice")
    bob.ss("set", "project", "--id=prj99", "--name=DB", "--value=fake-bob-db")
    store_ids = {line for path in ("team.toml", "projects/prj99.toml")
                 for line in (bob.store / path).read_text().splitlines() if line.startswith("store = ")}
    assert len(store_ids) == 1, store_ids


def test_a_file_copied_in_from_another_store_is_refused_even_from_a_trusted_writer(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice = world["alice"]
    other = tmp_path / "alice-other-store"  # Alice's own second store: same key, another store id
    alice.ss("--store", str(other), "set", "team", "--name=WANDB_API_KEY", "--value=fake-other-store")
    kept = (alice.store / "team.toml").read_bytes()
    (alice.store / "team.toml").write_bytes((other / "team.toml").read_bytes())
    done = alice.ss("get", "team", "--name=WANDB_API_KEY", ok=False)
    assert done.returncode == 1 and "fake-other-store" not in done.stdout
    line = one_line_error(done.stderr)
    assert "team.toml belongs to another store" in line and "refusing to use it" in line
    # a file by a writer nobody trusts is named for that first, whatever store id it carries
    mallory = world["mallory"]
    mallory.ss("--store", str(tmp_path / "mallory-own"), "set", "team", "--name=X", "--value=fake-m")
    (alice.store / "team.toml").write_bytes((tmp_path / "mallory-own" / "team.toml").read_bytes())
    done = alice.ss("get", "team", "--name=X", ok=False)
    assert f"team.toml is signed by {mallory.key}" in one_line_error(done.stderr)
    (alice.store / "team.toml").write_bytes(kept)
    assert alice.ss("get", "team", "--name=WANDB_API_KEY").stdout == "fake-team-wandb"


def test_a_forged_0_1_file_with_every_signed_file_deleted_is_refused_by_a_stateless_ci_job(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A fresh CI job (new clone, SECRETSTORE_KEY, SECRETSTORE_TRUST=alice, no state) has no memory of
    the store being signed. Mallory deletes every signed file and puts a 0.1 (unsigned) team.toml in
    its place, sealed to the job's public key: no private key needed. Every reading command refuses
    it, --strict or not, and never prints or injects her value."""
    from secretstore.keys import PublicKey
    from tests.legacy_files import forge_v1_scope

    alice, mallory, node = world["alice"], world["mallory"], world["node"]
    alice.ss("recipients", "add", node.key, "--label=ci")  # the job reads the whole store
    alice.publish("ci")
    ci_env = {"SECRETSTORE_KEY": Path(node.env["SECRETSTORE_IDENTITY"]).read_text(), "SECRETSTORE_TRUST": alice.key,
              "SECRETSTORE_IDENTITY": str(tmp_path / "none")}
    node.clone(world["origin"])
    assert node.ss("get", "team", "--name=WANDB_API_KEY", env=ci_env).stdout == "fake-team-wandb"
    mallory.pull()
    mallory.git("rm", "-q", "recipients.toml", "clusters/gpu-a.toml")
    forged = forge_v1_scope("team", None, {"WANDB_API_KEY": "fake-mallory", "LD_PRELOAD": "/tmp/evil.so"},
                            [PublicKey.decode(node.key)])
    (mallory.store / "team.toml").write_bytes(forged)
    mallory.publish("routine update")
    shutil.rmtree(node.store)  # the next job: a new clone, a new state directory
    shutil.rmtree(Path(node.env["SECRETSTORE_STATE_DIR"]), ignore_errors=True)
    node.clone(world["origin"])
    assert not (node.store / "recipients.toml").exists()
    show = ["--", "sh", "-c", 'printf %s "$WANDB_API_KEY"']
    runs = {" ".join(args[:2]): node.ss(*args, env=ci_env, ok=False) for args in (
        ["exec", *show], ["exec", "--strict", *show], ["get", "team", "--name=WANDB_API_KEY"],
        ["list", "team"], ["export"], ["history", "team", "--name=WANDB_API_KEY"])}
    used = {what: (done.returncode, done.stdout) for what, done in runs.items()
            if done.returncode != 1 or "fake-mallory" in done.stdout + done.stderr or "WANDB_API_KEY" in done.stdout}
    assert not used, used  # every command, --strict or not: exit 1, her value and names never shown
    for done in runs.values():
        line = one_line_error(done.stderr)
        assert "team.toml is not signed (a secretstore 0.1 file): refusing to use it" in line, line
        assert "secretstore upgrade" in done.stderr  # the hint, for the owner of a genuine 0.1 store


def test_a_dotfile_pointing_at_a_new_store_of_0_1_files_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The repository's .secretstore.toml names the store; Mallory points it at a new directory holding
    a 0.1 team.toml sealed to Alice's (public) key. Alice has no trust state for that path (a store
    never read), yet her exec after a pull refuses it, and upgrade does not sign it unasked."""
    import subprocess

    from secretstore.keys import PublicKey
    from tests.conftest import console_script
    from tests.legacy_files import forge_v1_scope
    from tests.sharing_helpers import team_of

    people = team_of(tmp_path, ("alice", "mallory"))
    alice, mallory, origin = people["alice"], people["mallory"], people["origin"]
    project = {name: tmp_path / f"{name}-project" for name in ("alice", "mallory")}

    def run(person, *args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        env = {k: v for k, v in person.env.items() if k != "SECRETSTORE_DIR"}  # the dotfile names the store
        done = subprocess.run(list(args), cwd=project[person.name], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        if ok:
            assert done.returncode == 0, (person.name, args, done.stdout, done.stderr)
        return done

    ss = console_script()
    project["alice"].mkdir()
    run(alice, "git", "init", "-q", "-b", "main")
    (project["alice"] / ".secretstore.toml").write_text('store = "store"\n')
    run(alice, ss, "set", "team", "--name=WANDB_API_KEY", "--value=fake-team-wandb")
    run(alice, "git", "add", "-A")
    run(alice, "git", "commit", "-q", "-m", "secrets")
    run(alice, "git", "remote", "add", "origin", str(origin))
    run(alice, "git", "push", "-q", "origin", "HEAD:main")
    subprocess.run(["git", "clone", "-q", str(origin), str(project["mallory"])], env=mallory.env, check=True)
    (project["mallory"] / ".secretstore.toml").write_text('store = "store2"\n')
    (project["mallory"] / "store2").mkdir()
    forged = forge_v1_scope("team", None, {"WANDB_API_KEY": "fake-mallory"}, [PublicKey.decode(alice.key)])
    (project["mallory"] / "store2" / "team.toml").write_bytes(forged)
    run(mallory, "git", "add", "-A")
    run(mallory, "git", "commit", "-q", "-m", "move the store")
    run(mallory, "git", "push", "-q", "origin", "HEAD:main")
    run(alice, "git", "pull", "-q", "--no-edit", "origin", "main")
    assert "store2" in run(alice, ss, "where").stdout
    done = run(alice, ss, "exec", "--", "sh", "-c", 'printf %s "$WANDB_API_KEY"', ok=False)
    assert done.returncode == 1 and "fake-mallory" not in done.stdout + done.stderr
    assert "team.toml is not signed (a secretstore 0.1 file): refusing to use it" in one_line_error(done.stderr)
    done = run(alice, ss, "get", "team", "--name=WANDB_API_KEY", ok=False)
    assert done.returncode == 1 and done.stdout == ""
    # following the hint without a terminal signs nothing: it shows the file, and asks for --yes
    before = (project["alice"] / "store2" / "team.toml").read_bytes()
    done = run(alice, ss, "upgrade", ok=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "team.toml (team): 1 secret: WANDB_API_KEY" in done.stdout and "fake-mallory" not in done.stdout
    assert "refusing to sign without confirmation" in one_line_error(done.stderr)
    assert (project["alice"] / "store2" / "team.toml").read_bytes() == before


# --- the legitimate flows ----------------------------------------------------------------


def test_alice_adds_bob_bob_adds_carol_and_everyone_reads_each_other(world) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol, node = world["alice"], world["bob"], world["carol"], world["node"]
    alice.ss("recipients", "add", bob.key, "--label=bob")
    alice.publish("bob joins")
    bob.clone(world["origin"])
    bob.ss("trust", alice.key, "--label=alice")  # the one step: after checking Alice's key with her
    bob.ss("set", "project", "--id=prj42", "--name=DB_PASSWORD", "--value=fake-bob-db")
    bob.ss("recipients", "add", carol.key, "--project=prj42", "--label=carol")
    bob.publish("carol joins prj42")
    carol.clone(world["origin"])
    carol.ss("trust", alice.key)  # Carol trusts Alice; Alice vouched for Bob, Bob for Carol
    assert carol.ss("get", "project", "--id=prj42", "--name=DB_PASSWORD").stdout == "fake-bob-db"
    carol.ss("set", "project", "--id=prj42", "--name=CAROL_TOKEN", "--value=fake-carol")
    carol.publish("carol's token")
    alice.pull()
    # Alice never read Bob's version, yet trusts Carol's write: Bob's endorsement, which Alice vouched for
    got = alice.ss("get", "project", "--id=prj42", "--name=CAROL_TOKEN")
    assert got.stdout == "fake-carol"
    assert "added carol" in got.stderr  # said once
    assert "added carol" not in alice.ss("get", "project", "--id=prj42", "--name=CAROL_TOKEN").stderr
    # Carol may write prj42 only: her team file would be refused
    carol.pull()
    alice.ss("set", "team", "--name=FROM_ALICE", "--value=fake-alice")
    alice.publish("team")
    carol.pull()
    assert carol.ss("get", "team", "--name=FROM_ALICE", ok=False).returncode == 1  # not a recipient
    # rotate and remove keep working for everyone still in
    alice.ss("rotate", "--all")
    alice.publish("rotate")
    bob.pull()
    assert bob.ss("get", "project", "--id=prj42", "--name=CAROL_TOKEN").stdout == "fake-carol"
    bob.ss("recipients", "remove", carol.key, "--project=prj42")
    bob.publish("carol leaves prj42")
    alice.pull()
    assert alice.ss("get", "project", "--id=prj42", "--name=DB_PASSWORD").stdout == "fake-bob-db"
    carol.pull()
    assert carol.ss("get", "project", "--id=prj42", "--name=DB_PASSWORD", ok=False).returncode == 1
    # a node with only SECRETSTORE_KEY and SECRETSTORE_TRUST
    alice.ss("recipients", "add", node.key, "--cluster=gpu-a")
    alice.publish("node")
    node.clone(world["origin"])
    env = {"SECRETSTORE_KEY": Path(node.env["SECRETSTORE_IDENTITY"]).read_text(), "SECRETSTORE_TRUST": bob.key}
    # the node trusts Bob only; Alice wrote the cluster file, and Bob's entry says Alice... no:
    # Alice is trusted through nobody here, so the node must trust her key to read her file
    refused = node.ss("get", "cluster", "--id=gpu-a", "--name=HF_TOKEN", env=env, ok=False)
    assert refused.returncode == 1 and "whom you do not trust" in refused.stderr
    env["SECRETSTORE_TRUST"] = f"{bob.key}, {alice.key}"
    assert node.ss("get", "cluster", "--id=gpu-a", "--name=HF_TOKEN", env=env).stdout == "fake-gpu-hf"


def test_a_node_key_used_on_the_owners_machine_is_not_trusted_beyond_its_scopes(
        isolated_env: dict[str, str], cli_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The trust state belongs to the OS user, not to one identity: writing once with a cluster
    node's key (SECRETSTORE_IDENTITY) used to record it as "you", trusted for every scope, so a
    value that key later wrote into another scope reached the owner's exec."""
    assert cli_run("set", "team", "--name=A", "--value=fake-a").returncode == 0
    node = {"SECRETSTORE_IDENTITY": str(tmp_path / "node-key")}
    node_key = cli_run("init", env=node).stdout.decode().strip()
    assert cli_run("recipients", "add", node_key, "--cluster", "gpu-a", "--label", "node").returncode == 0
    assert cli_run("set", "cluster", "--id=gpu-a", "--name=OWN", "--value=fake-own", env=node).returncode == 0
    # its own scope is readable, through the roster
    assert cli_run("get", "cluster", "--id=gpu-a", "--name=OWN").stdout == b"fake-own"
    assert cli_run("set", "cluster", "--id=c9", "--name=X", "--value=fake-evil", env=node).returncode == 0
    me = cli_run("identity").stdout.decode().strip()
    assert cli_run("recipients", "add", me, "--cluster", "c9", env=node).returncode == 0
    listed = cli_run("trust", "--list").stdout.decode()
    assert not any(node_key in line and "you" in line for line in listed.splitlines()), listed
    done = cli_run("exec", "--cluster", "c9", "--", "sh", "-c", "echo X=$X")
    assert done.returncode == 1 and b"fake-evil" not in done.stdout + done.stderr
    assert b"clusters/c9.toml is signed by " + node_key.encode() in done.stderr, done.stderr.decode()
