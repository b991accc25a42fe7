"""context resolution, layers (skipping unreadable scopes), precedence and references. Fake values only."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore import context as contexts
from secretstore import crypto, precedence
from secretstore import layers as layers_module
from secretstore.errors import NotFoundError, NotRecipientError, UsageError
from secretstore.identity import Identity, resolve_identity
from secretstore.store import TEAM, Scope, Store

CLUSTER = Scope("cluster", "gpu-a")
PROJECT = Scope("project", "prj42")


# --- precedence ------------------------------------------------------------------


@pytest.mark.parametrize(
    "present",
    [combo for size in range(4) for combo in itertools.combinations(("team", "cluster", "project"), size)],
)
def test_precedence_every_combination(present: tuple[str, ...]) -> None:
    """SHARED is set in exactly the scopes in ``present``: the highest one wins, the rest are listed."""
    scopes = {"team": TEAM, "cluster": CLUSTER, "project": PROJECT}
    layers = [
        (scopes[entity], {"SHARED": f"fake-{entity}", f"ONLY_{entity.upper()}": f"only-{entity}"})
        if entity in present
        else (scopes[entity], {})
        for entity in ("team", "cluster", "project")
    ]
    merged = precedence.merge_scopes(layers)
    if not present:
        assert merged == {}
        return
    winner = present[-1]  # combinations keep team < cluster < project order
    assert merged["SHARED"].value == f"fake-{winner}"
    assert merged["SHARED"].scope == scopes[winner]
    assert merged["SHARED"].overrides == [scopes[entity] for entity in present[:-1]]
    for entity in present:
        only = merged[f"ONLY_{entity.upper()}"]
        assert (only.value, only.scope, only.overrides) == (f"only-{entity}", scopes[entity], [])
    assert list(merged) == sorted(merged)


def test_merged_repr_hides_values() -> None:
    merged = precedence.merge_scopes([(TEAM, {"K": "fake-super-secret"})])
    assert "fake-super-secret" not in repr(merged)


# --- context ------------------------------------------------------------------------


def _dotfile(directory: Path, text: str) -> Path:
    path = directory / contexts.DOTFILE
    path.write_text(text)
    return path


def test_context_none(tmp_path: Path) -> None:
    context = contexts.resolve_context(environ={}, cwd=str(tmp_path))
    assert (context.project, context.cluster) == (None, None)
    assert context.scopes() == [TEAM]


def test_context_dotfile_in_a_parent(tmp_path: Path) -> None:
    path = _dotfile(tmp_path, 'project = "prj-dot"\ncluster = "gpu-dot"  \n# a comment\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    context = contexts.resolve_context(environ={}, cwd=str(deep))
    assert (context.project, context.cluster) == ("prj-dot", "gpu-dot")
    assert context.project_source == str(path)
    assert context.scopes() == [TEAM, Scope("cluster", "gpu-dot"), Scope("project", "prj-dot")]


def test_context_nearest_dotfile_wins(tmp_path: Path) -> None:
    _dotfile(tmp_path, 'project = "outer"\n')
    inner = tmp_path / "inner"
    inner.mkdir()
    _dotfile(inner, "project = 'inner'\n")
    assert contexts.resolve_context(environ={}, cwd=str(inner)).project == "inner"


def test_context_env_beats_dotfile_and_flags_beat_env(tmp_path: Path) -> None:
    _dotfile(tmp_path, 'project = "prj-dot"\ncluster = "gpu-dot"\n')
    env = {contexts.ENV_PROJECT: "prj-env", contexts.ENV_CLUSTER: "gpu-env"}
    context = contexts.resolve_context(environ=env, cwd=str(tmp_path))
    assert (context.project, context.cluster) == ("prj-env", "gpu-env")
    context = contexts.resolve_context("prj-flag", "gpu-flag", environ=env, cwd=str(tmp_path))
    assert (context.project, context.cluster) == ("prj-flag", "gpu-flag")
    assert context.project_source == "--project"


def test_context_each_resolved_on_its_own(tmp_path: Path) -> None:
    """A --cluster flag with the project from the dotfile, and the other way round with env."""
    _dotfile(tmp_path, 'project = "prj-dot"\ncluster = "gpu-dot"\n')
    context = contexts.resolve_context(None, "gpu-flag", environ={}, cwd=str(tmp_path))
    assert (context.project, context.cluster) == ("prj-dot", "gpu-flag")
    context = contexts.resolve_context(None, None, environ={contexts.ENV_PROJECT: "prj-env"}, cwd=str(tmp_path))
    assert (context.project, context.cluster) == ("prj-env", "gpu-dot")


def test_context_empty_env_counts_as_unset(tmp_path: Path) -> None:
    _dotfile(tmp_path, 'project = "prj-dot"\n')
    context = contexts.resolve_context(environ={contexts.ENV_PROJECT: ""}, cwd=str(tmp_path))
    assert context.project == "prj-dot"


def test_dotfile_full_toml_and_errors(tmp_path: Path) -> None:
    _dotfile(tmp_path, '[x]\n')
    with pytest.raises(UsageError, match="unknown key 'x'"):
        contexts.resolve_context(environ={}, cwd=str(tmp_path))
    _dotfile(tmp_path, 'project = "a\\u0062c"  # escapes need the real parser\n')
    assert contexts.resolve_context(environ={}, cwd=str(tmp_path)).project == "abc"
    _dotfile(tmp_path, 'project = "../etc"\n')
    with pytest.raises(UsageError, match="invalid project id"):
        contexts.resolve_context(environ={}, cwd=str(tmp_path))
    _dotfile(tmp_path, "project = 42\n")
    with pytest.raises(UsageError, match="must be a string"):
        contexts.resolve_context(environ={}, cwd=str(tmp_path))
    _dotfile(tmp_path, 'project = "unterminated\n')
    with pytest.raises(UsageError, match="not valid TOML"):
        contexts.resolve_context(environ={}, cwd=str(tmp_path))


def test_invalid_id_from_env_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\$SECRETSTORE_CLUSTER"):
        contexts.resolve_context(environ={contexts.ENV_CLUSTER: "a/b"}, cwd=str(tmp_path))


def test_dotfile_not_read_when_flags_and_env_decide(tmp_path: Path) -> None:
    _dotfile(tmp_path, "this is not toml at all [[[\n")
    environ = {contexts.ENV_CLUSTER: "c", "SECRETSTORE_DIR": str(tmp_path / "s")}
    context = contexts.resolve_context("p", None, no_team=True, environ=environ, cwd=str(tmp_path))
    assert (context.project, context.cluster, context.team) == ("p", "c", False)
    with pytest.raises(UsageError, match="not valid TOML"):  # it may still say team = false
        contexts.resolve_context("p", None, environ=environ, cwd=str(tmp_path))


# --- the environment ---------------------------------------------------------------------


def _merged() -> dict[str, precedence.Merged]:
    return precedence.merge_scopes(
        [
            (TEAM, {"SHARED": "fake-team", "TEAM_ONLY": "fake-team-only", "wandb_key": "fake-wandb"}),
            (CLUSTER, {"SHARED": "fake-cluster"}),
            (PROJECT, {"SHARED": "fake-project"}),
        ]
    )


def test_secrets_override_inherited_by_default() -> None:
    env, decided = precedence.build_environment(_merged(), {"SHARED": "inherited", "PATH": "/bin"})
    assert env["SHARED"] == "fake-project"
    assert env["PATH"] == "/bin"
    row = {item.name: item for item in decided}["SHARED"]
    assert row.source == "project prj42"
    assert row.overrides == ["inherited env", "team", "cluster gpu-a"]
    assert "PATH" not in {item.name for item in decided}


def test_no_override_lets_inherited_win() -> None:
    env, decided = precedence.build_environment(_merged(), {"SHARED": "inherited"}, no_override=True)
    assert env["SHARED"] == "inherited"
    assert env["TEAM_ONLY"] == "fake-team-only"
    row = {item.name: item for item in decided}["SHARED"]
    assert (row.source, row.overrides, row.secret) == (
        "inherited env",
        ["team", "cluster gpu-a", "project prj42"],
        False,
    )


def test_explicit_literal_wins_over_secret_and_inherited() -> None:
    env, decided = precedence.build_environment(
        _merged(), {"SHARED": "inherited"}, [("SHARED", "typed")], no_override=True
    )
    assert env["SHARED"] == "typed"
    row = decided[[item.name for item in decided].index("SHARED")]
    assert row.source == "--env" and not row.secret


def test_references_explicit_and_inherited() -> None:
    env, decided = precedence.build_environment(
        _merged(),
        {"INHERITED_REF": "secret:TEAM_ONLY", "NOT_A_REF": "xsecret:TEAM_ONLY"},
        [("MY_KEY", "secret:wandb_key"), ("BOTH", "secret:SHARED")],
    )
    assert env["MY_KEY"] == "fake-wandb"
    assert env["BOTH"] == "fake-project"
    assert env["INHERITED_REF"] == "fake-team-only"
    assert env["NOT_A_REF"] == "xsecret:TEAM_ONLY"
    rows = {item.name: item for item in decided}
    assert rows["MY_KEY"].origin == "--env -> secret:wandb_key (team)"
    assert rows["INHERITED_REF"].origin == "inherited env -> secret:TEAM_ONLY (team)"
    assert rows["MY_KEY"].secret


def test_secret_values_are_not_references() -> None:
    merged = precedence.merge_scopes([(TEAM, {"LOOKS_LIKE_REF": "secret:OTHER"})])
    env, _ = precedence.build_environment(merged, {})
    assert env["LOOKS_LIKE_REF"] == "secret:OTHER"


def test_missing_references_fail_naming_variable_and_secret() -> None:
    with pytest.raises(NotFoundError) as caught:
        precedence.build_environment(
            _merged(),
            {"INHERITED_REF": "secret:gone_too"},
            [("MY_KEY", "secret:nope")],
            searched="team or project prj42",
        )
    message = caught.value.message
    assert "MY_KEY references secret 'nope'" in message
    assert "INHERITED_REF references secret 'gone_too'" in message
    assert "team or project prj42" in message


def test_refs_only_injects_only_referenced() -> None:
    env, decided = precedence.build_environment(
        _merged(), {}, [("MY_KEY", "secret:wandb_key")], refs_only=True
    )
    assert env == {"MY_KEY": "fake-wandb"}
    assert [item.name for item in decided] == ["MY_KEY"]


def test_mask_values_only_secrets_longest_first() -> None:
    _env, decided = precedence.build_environment(
        _merged(), {"SHARED": "x"}, [("LIT", "typed-literal"), ("R", "secret:TEAM_ONLY")]
    )
    values = precedence.mask_values(decided)
    assert "typed-literal" not in values
    assert values[0] == "fake-team-only"
    assert set(values) == {"fake-project", "fake-team-only", "fake-wandb"}


def test_env_assignment_parsing() -> None:
    assert precedence.parse_env_assignment("A=b=c") == ("A", "b=c")
    assert precedence.parse_env_assignment("A=") == ("A", "")
    for bad in ("A", "=x", "A=\x00"):
        with pytest.raises(UsageError):
            precedence.parse_env_assignment(bad)


# --- reading the store --------------------------------------------------------------------


def _identity() -> Identity:
    return resolve_identity(create=True)[0]


def test_load_layers_reads_only_existing_scopes_one_unlock_each(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(isolated_env["store"])
    me = _identity()
    for i in range(50):
        store.set(TEAM, f"T{i}", f"fake-team-{i}", me)
    store.set(PROJECT, "P", "fake-project", me)
    calls: list[Scope] = []
    real_unlock = Store.unlock_file

    def counting_unlock(self: Store, scope: Scope, *args: object, **kwargs: object) -> object:
        calls.append(scope)
        return real_unlock(self, scope, *args, **kwargs)  # type: ignore[arg-type]

    opened: list[str] = []
    real_open = crypto.open_data_key

    def counting_open(sealed: bytes, public_key: bytes, secret_key: bytes, where: str) -> bytes:
        opened.append(where)
        return real_open(sealed, public_key, secret_key, where)

    monkeypatch.setattr(Store, "unlock_file", counting_unlock)
    monkeypatch.setattr(crypto, "open_data_key", counting_open)
    context = contexts.Context("prj42", "gpu-a")
    layers, warnings = layers_module.load_layers(store, context, _identity)
    assert warnings == [f"cluster gpu-a has no secrets in {store.root}"]  # named, but no file
    assert calls == [TEAM, PROJECT]  # the cluster has no file: not even read
    assert len(opened) == 2  # one public-key operation per scope file, not per value
    assert layers[0][1]["T7"] == "fake-team-7"
    assert layers[1] == (CLUSTER, {})


def test_load_layers_needs_no_identity_when_no_scope_exists(isolated_env: dict[str, str]) -> None:
    def no_identity() -> Identity:
        raise AssertionError("identity asked for with nothing to read")

    os.makedirs(isolated_env["store"])
    layers, _ = layers_module.load_layers(Store(isolated_env["store"]), contexts.Context(), no_identity)
    assert layers == [(TEAM, {})]


def test_not_recipient_is_skipped_with_warning_unless_strict(isolated_env: dict[str, str]) -> None:
    store = Store(isolated_env["store"])
    me = _identity()
    stranger = Identity.generate("stranger")
    store.set(TEAM, "T", "fake-team", me)
    store.set(CLUSTER, "C", "fake-cluster", stranger)
    context = contexts.Context(None, "gpu-a")
    layers, warnings = layers_module.load_layers(store, context, _identity)
    assert layers == [(TEAM, {"T": "fake-team"}), (CLUSTER, {})]
    assert len(warnings) == 1 and "skipped cluster gpu-a: not a recipient" in warnings[0]
    assert "secretstore recipients add ssk2" in warnings[0] and warnings[0].endswith("--cluster gpu-a)")
    with pytest.raises(NotRecipientError):
        layers_module.load_layers(store, context, _identity, strict=True)


def test_find_dotfile_stops_at_root(tmp_path: Path) -> None:
    assert contexts.find_dotfile(str(tmp_path)) in (None, os.path.join("/", contexts.DOTFILE))


# --- the fast environment agrees with the explained one -------------------------------

_NAMES = st.sampled_from(["A", "B", "C", "SECRETSTORE_KEY", "PATH"])
_VALUES = st.one_of(
    st.sampled_from(["fake-1", "fake-2", "x", "secret:A", "secret:B", "secret:NOPE", "secret: not a ref"]),
    st.text(min_size=1, max_size=5).filter(lambda text: "\x00" not in text),
)
_LAYER = st.dictionaries(_NAMES, _VALUES, max_size=5)


@settings(max_examples=400, deadline=None)
@given(
    team=_LAYER,
    cluster=_LAYER,
    project=_LAYER,
    inherited=st.dictionaries(_NAMES, _VALUES, max_size=5),
    explicit=st.lists(st.tuples(_NAMES, _VALUES), max_size=3),
    refs_only=st.booleans(),
    no_override=st.booleans(),
    withheld=st.frozensets(_NAMES, max_size=2),
)
def test_environment_equals_build_environment(
    team: dict[str, str],
    cluster: dict[str, str],
    project: dict[str, str],
    inherited: dict[str, str],
    explicit: list[tuple[str, str]],
    refs_only: bool,
    no_override: bool,
    withheld: frozenset[str],
) -> None:
    """exec's fast ``environment`` gives exactly the environment, or the error, that
    ``build_environment`` (which --dry-run shows) gives, for every combination,
    names held back as loader variables (``withheld``) included."""
    layers = [(TEAM, team), (CLUSTER, cluster), (PROJECT, project)]
    flags = {"refs_only": refs_only, "no_override": no_override, "searched": "team",
             "withheld": withheld}
    try:
        expected = precedence.build_environment(precedence.merge_scopes(layers), inherited, explicit, **flags)[0]
    except NotFoundError as exc:
        with pytest.raises(NotFoundError) as fast_error:
            precedence.environment(layers, inherited, explicit, **flags)
        assert fast_error.value.message == exc.message
        return
    assert precedence.environment(layers, inherited, explicit, **flags) == expected


def test_inherited_credential_never_comes_back_under_no_override() -> None:
    """A secret named like a credential, with --no-override: the inherited key must still not pass."""
    layers = [(TEAM, {"SECRETSTORE_KEY": "fake-secret-named-like-a-key"})]
    inherited = {"SECRETSTORE_KEY": "fake-node-key"}
    for env in (
        precedence.build_environment(precedence.merge_scopes(layers), inherited, no_override=True)[0],
        precedence.environment(layers, inherited, no_override=True),
    ):
        assert env["SECRETSTORE_KEY"] == "fake-secret-named-like-a-key"
