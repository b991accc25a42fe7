"""recipients list|add|remove: store-wide (recipients.toml) and per scope; removal really revokes."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from secretstore import crypto, envelope, scopefile
from secretstore.errors import NotRecipientError, TamperedError, UsageError
from secretstore.identity import Identity, create_identity
from secretstore.keys import PublicKey as Recipient
from secretstore.store import TEAM, Scope, Store
from tests.sharing_helpers import call

GPU = Scope("cluster", "gpu-a")


@pytest.fixture
def people(tmp_path: Path) -> dict[str, Identity]:
    return {who: create_identity(str(tmp_path / "keys" / who)) for who in ("alice", "bob", "node")}


def store_wide(store: Store, who: Identity) -> list[Recipient] | None:
    """The roster's store-wide members (who new scopes are sealed to); None without a roster."""
    roster = store.roster(who.public)
    return None if roster is None else roster.recipients()


def as_user(monkeypatch: pytest.MonkeyPatch, person: Identity) -> None:
    monkeypatch.setenv("SECRETSTORE_IDENTITY", person.source)


def test_store_wide_add_reaches_existing_and_new_scopes(store, people) -> None:  # type: ignore[no-untyped-def]
    alice, bob = people["alice"], people["bob"]
    store.set(TEAM, "A", "team-a", alice)
    store.set(GPU, "C", "gpu-c", alice)
    assert store_wide(store, alice) is None
    report = store.add_recipient(bob.public, alice)
    assert report.changed == [TEAM, GPU]
    assert store.get(TEAM, "A", bob) == "team-a" and store.get(GPU, "C", bob) == "gpu-c"
    assert {r.text for r in store_wide(store, alice) or []} == {alice.public_text, bob.public_text}
    # a scope Bob creates is sealed to Alice too, and the other way round
    store.set(Scope("project", "p1"), "P", "proj", bob)
    assert store.get(Scope("project", "p1"), "P", alice) == "proj"
    store.set(Scope("project", "p2"), "Q", "proj2", alice)
    assert store.get(Scope("project", "p2"), "Q", bob) == "proj2"
    # adding again changes nothing
    again = store.add_recipient(bob.public, alice)
    assert again.changed == [] and len(again.unchanged) == 4


def test_add_touches_only_a_new_recipient_block_and_the_mac(store, people) -> None:  # type: ignore[no-untyped-def]
    alice, bob = people["alice"], people["bob"]
    store.set_many(TEAM, {name: f"value-{name}" for name in ("A", "B", "C")}, alice)  # one seal, no section
    before = Path(store.path(TEAM)).read_text().splitlines()
    store.add_recipient(bob.public, alice, TEAM)
    after = Path(store.path(TEAM)).read_text().splitlines()
    changed = [line for line in difflib.ndiff(before, after) if line[:1] in "+-"]
    removed = [line for line in changed if line.startswith("-")]
    added = [line for line in changed if line.startswith("+")]
    # the seal's lines change (where the sections start, the counter, signature and MAC), and one
    # recipient block is added
    assert sorted(line.split(" = ")[0] for line in removed) == ["- base", "- counter", "- mac", "- signature"]
    assert any(bob.public_text in line for line in added)
    assert all(line.split(" = ")[0] in ("+ base", "+ counter", "+ signature", "+ mac") or ("recipients" in line)
               or ("public_key" in line) or ("sealed_key" in line) or line.strip() == "+" for line in added), added


def test_scope_option_narrows_to_one_scope_and_creates_it_empty(store, people) -> None:  # type: ignore[no-untyped-def]
    alice, node = people["alice"], people["node"]
    store.set(TEAM, "A", "team-a", alice)
    report = store.add_recipient(node.public, alice, GPU)
    assert report.changed == [GPU]
    assert store.read(GPU, node) == {}
    # the roster lists the node for that cluster only: new scopes are not sealed to it
    assert store_wide(store, alice) == []
    roster = store.roster(alice.public)
    assert roster is not None and roster.find(node.public).scopes == ("cluster:gpu-a",)  # type: ignore[union-attr]
    store.set(GPU, "C", "gpu-c", alice)
    assert store.read(GPU, node) == {"C": "gpu-c"}
    with pytest.raises(NotRecipientError) as caught:
        store.read(TEAM, node)
    assert caught.value.message == "not a recipient of team"
    assert caught.value.hint == f"ask an owner to run: secretstore recipients add {node.public_text} --team"


def test_removal_revokes_even_a_kept_data_key(store, people) -> None:  # type: ignore[no-untyped-def]
    alice, bob = people["alice"], people["bob"]
    store.set(TEAM, "A", "old-a", alice)
    store.add_recipient(bob.public, alice)
    # give A a history version, to check that history is re-encrypted too
    unlocked = store.unlock(TEAM, alice)
    assert unlocked is not None
    old = unlocked.file.entries["A"]
    unlocked.file.entries["A"] = scopefile.Entry(old.current, old.updated, (old.current,))  # type: ignore[arg-type]
    store._write(unlocked, alice)
    kept = store.unlock(TEAM, bob)  # Bob keeps the data key before he is removed
    assert kept is not None
    report = store.remove_recipient(bob.public, alice)
    assert report.changed == [TEAM]
    with pytest.raises(NotRecipientError):
        store.read(TEAM, bob)
    store.set(TEAM, "NEW", "after-removal", alice)
    file = store.load(TEAM)
    assert file is not None
    assert [s.public_key for s in file.recipients] == [alice.public_text]
    for name, entry in file.entries.items():
        for version in (entry.current, *entry.history):
            assert version is not None
            with pytest.raises(TamperedError):  # the old key opens neither new nor old values
                scopefile.decrypt(file, kept.keys, name, version, "team.toml")
    assert not crypto.mac_matches(kept.keys, envelope.mac_input(file), file.mac)
    current = store.unlock(TEAM, alice)
    assert current is not None
    assert current.values() == {"A": "old-a", "NEW": "after-removal"}
    history = current.file.entries["A"].history
    assert scopefile.decrypt(current.file, current.keys, "A", history[0], "t") == "old-a"
    assert bob.public not in (store_wide(store, alice) or [])


def test_refuses_to_remove_your_own_key(store, people) -> None:  # type: ignore[no-untyped-def]
    alice = people["alice"]
    store.set(TEAM, "A", "a", alice)
    with pytest.raises(UsageError, match="your own key"):
        store.remove_recipient(alice.public, alice)


def test_cli_add_list_remove(capsys, monkeypatch, people) -> None:  # type: ignore[no-untyped-def]
    alice, bob, node = people["alice"], people["bob"], people["node"]
    as_user(monkeypatch, alice)
    assert call(capsys, monkeypatch, "set", "team", "--name=A", "--value=a")[0] == 0
    code, out, _ = call(capsys, monkeypatch, "recipients", "add", bob.public_text, "--label", "bob")
    assert code == 0 and out.startswith(f"Added recipient {bob.public_text} to the store")
    code, out, _ = call(capsys, monkeypatch, "recipients", "add", node.public_text,
                        "--label=gpu-node", "--cluster", "gpu-a")
    assert code == 0 and "cluster gpu-a" in out
    code, out, _ = call(capsys, monkeypatch, "recipients", "list")
    assert code == 0 and f"| {bob.public_text} | bob      | all (store-wide) |" in out
    assert f"| {node.public_text} | gpu-node | cluster gpu-a    |" in out
    code, out, _ = call(capsys, monkeypatch, "recipients", "list", "--cluster=gpu-a", "--json")
    assert code == 0 and "gpu-node" in out and bob.public_text in out
    as_user(monkeypatch, node)
    code, out, err = call(capsys, monkeypatch, "get", "team", "--name=A")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "secretstore: error: not a recipient of team",
        f"secretstore: hint: ask an owner to run: secretstore recipients add {node.public_text} --team",
    ]
    as_user(monkeypatch, alice)
    code, out, _ = call(capsys, monkeypatch, "recipients", "remove", bob.public_text)
    assert code == 0 and "rotated: team, cluster gpu-a" in out
    code, _, err = call(capsys, monkeypatch, "recipients", "remove", alice.public_text, "--team")
    assert code == 2 and "your own key" in err
    code, _, err = call(capsys, monkeypatch, "recipients", "add", "ssk1nope")
    assert code == 2 and "invalid public key" in err
    code, _, err = call(capsys, monkeypatch, "recipients", "add", bob.public_text, "--team", "--cluster=x")
    assert code == 2 and "at most one" in err


def test_store_wide_add_skips_scopes_you_cannot_open(store, people, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    alice, bob, node = people["alice"], people["bob"], people["node"]
    store.set(TEAM, "A", "a", alice)
    store.set(GPU, "C", "c", bob)  # sealed to Bob only
    as_user(monkeypatch, alice)
    code, out, err = call(capsys, monkeypatch, "recipients", "add", node.public_text)
    assert code == 0 and "re-sealed: team" in out
    assert "warning: skipped cluster gpu-a: not a recipient of cluster gpu-a" in err


def test_list_needs_no_identity(capsys, monkeypatch, store, people) -> None:  # type: ignore[no-untyped-def]
    store.set(TEAM, "A", "a", people["alice"])
    monkeypatch.setenv("SECRETSTORE_IDENTITY", "/nonexistent/identity")
    code, out, _ = call(capsys, monkeypatch, "recipients", "list", "--team")
    assert code == 0 and people["alice"].public_text in out


def test_store_wide_remove_warns_about_scopes_still_sealed_to_the_key(store, people, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    alice, bob, node = people["alice"], people["bob"], people["node"]
    store.set(TEAM, "A", "a", alice)
    store.add_recipient(node.public, alice, TEAM)
    store.set(GPU, "C", "c", bob)
    store.add_recipient(node.public, bob, GPU)  # Alice cannot open this one
    store.set(Scope("project", "p1"), "P", "p", bob)  # nor this one, which node is not in
    as_user(monkeypatch, alice)
    code, out, err = call(capsys, monkeypatch, "recipients", "remove", node.public_text)
    assert code == 0 and "rotated: team" in out
    assert err.splitlines() == [
        # offboarding: what the removed key could read, to change at its source
        f"secretstore: warning: {node.public_text} could read these secrets (current and earlier values); "
        "change each at its source and set it again (doctor, scopes and list --long show what is left):",
        "secretstore: warning:   team: A",
        f"secretstore: warning: cluster gpu-a is still sealed to {node.public_text}: "
        "ask one of its recipients to remove it",
    ]


def test_adding_a_listed_key_with_a_label_relabels_it(store, people) -> None:  # type: ignore[no-untyped-def]
    alice, bob = people["alice"], people["bob"]
    store.set(TEAM, "A", "a", alice)
    store.add_recipient(bob.public, alice)  # lists Alice without a label
    before = Path(store.path(TEAM)).read_bytes()
    store.add_recipient(Recipient.parse(alice.public_text, "alice"), alice)
    assert {r.text: r.label for r in store_wide(store, alice) or []} == {
        alice.public_text: "alice", bob.public_text: ""}
    assert Path(store.path(TEAM)).read_bytes() == before  # scope files untouched


@pytest.mark.parametrize("option", ["--cluster", "--project"])
@pytest.mark.parametrize("action", ["add", "remove", "list"])
def test_an_empty_scope_id_is_refused_not_widened_to_the_store(  # type: ignore[no-untyped-def]
    store, people, capsys, monkeypatch, option, action
) -> None:
    """`recipients add KEY --cluster "$UNSET"` once sealed the whole store to the node."""
    alice, node = people["alice"], people["node"]
    store.set(TEAM, "A", "fake-team", alice)
    before = Path(store.path(TEAM)).read_bytes()
    as_user(monkeypatch, alice)
    args = ["recipients", action] + ([node.public_text] if action != "list" else []) + [option, ""]
    code, out, err = call(capsys, monkeypatch, *args)
    assert code == 2, (out, err)
    assert f"{option} is empty: give a value, or leave the option out" in err
    assert Path(store.path(TEAM)).read_bytes() == before
    assert store_wide(store, alice) is None
    with pytest.raises(NotRecipientError):
        store.get(TEAM, "A", node)


def test_a_deeply_nested_recipients_file_is_a_format_error(store, people, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    Path(store.root).mkdir(parents=True, exist_ok=True)
    nested = "[" * 3000 + "]" * 3000
    Path(store.root, "recipients.toml").write_text(f'format = "secretstore-recipients/v1"\nx = {nested}\n')
    as_user(monkeypatch, people["alice"])
    code, _out, err = call(capsys, monkeypatch, "recipients", "list")
    assert code == 1
    assert err.startswith("secretstore: error: recipients.toml") and "internal error" not in err


def test_doctor_reports_extra_keys_even_without_recipients_toml(store, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Deleting recipients.toml must not silence the report of who else can read a scope."""
    from secretstore import doctor

    alice, bob = people["alice"], people["bob"]
    store.set(TEAM, "A", "fake-team", alice)
    as_user(monkeypatch, alice)
    quiet = [f.message for f in doctor.diagnose(store)]
    assert not any("also sealed to" in message for message in quiet)
    store.add_recipient(bob.public, alice, TEAM)
    # the roster lists Bob for team: expected, nothing to report
    assert not any("also sealed to" in f.message for f in doctor.diagnose(store))
    Path(store.recipients_path).unlink()
    messages = [f.message for f in doctor.diagnose(store)]
    assert f"team: also sealed to keys other than yours: {bob.public_text}" in messages


def test_doctor_warns_of_a_scope_still_sealed_to_a_removed_member(store, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A merge can keep team.toml sealed to someone the other branch removed store-wide (git merges
    team.toml before recipients.toml): doctor says so, with the command that re-seals it."""
    from secretstore import doctor, fsio
    from secretstore.store import SharingReport

    alice, bob = people["alice"], people["bob"]
    store.set(TEAM, "A", "fake-team", alice)
    store.add_recipient(bob.public, alice)
    store.remove_recipient(bob.public, alice)
    as_user(monkeypatch, alice)
    assert not any(bob.public_text in f.message for f in doctor.diagnose(store))
    with fsio.locked(store.root):  # what such a merge leaves: team.toml sealed to Bob again
        for unlocked in store._each_scope(TEAM, alice, SharingReport()):
            unlocked.rekey([*unlocked.recipients(), bob.public])
            store._write(unlocked, alice)
    found = [f for f in doctor.diagnose(store) if bob.public_text in f.message]
    assert [(f.level, f.message) for f in found] == [(doctor.WARN, (
        f"team: still sealed to {bob.public_text}, removed from this store: they can read its values; "
        f"run: secretstore recipients remove {bob.public_text} --team"))]
    store.remove_recipient(bob.public, alice, TEAM)  # the command it names
    assert not any(bob.public_text in f.message for f in doctor.diagnose(store))
