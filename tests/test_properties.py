"""Property tests: the store behaves like a dict, and every name and value round-trips.

``StoreMachine`` runs random sequences of set / delete / get / list / rotate on
a real store directory against a plain ``dict`` model. After every step each
scope file must read the same through the fast and the reference reader, be
exactly what the canonical writer would write, and leave no temp file behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from secretstore import fsio, scopefile
from secretstore.errors import NotFoundError, UsageError
from secretstore.identity import Identity
from secretstore.rules import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_VALUE_BYTES
from secretstore.store import Scope, Store

SCOPES = [Scope("team"), Scope("project", "prj1"), Scope("cluster", "gpu-a")]

names = st.one_of(
    st.sampled_from(["A", "B", "API_KEY", "a_1", "Z" * MAX_NAME_LENGTH]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True),
)


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


# Values: any text a value may hold (unicode, new lines, CR, tabs, quotes), and the edges.
plain_values = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=60,
)
edge_values = st.sampled_from([
    "x",
    "multi\nline\r\nvalue\n",
    "\U0001f511" * (MAX_VALUE_BYTES // 4),  # exactly 64 KiB of 4-byte characters
    "\u00e9" * (MAX_VALUE_BYTES // 2),  # exactly 64 KiB of 2-byte characters
    "a" * MAX_VALUE_BYTES,
    "a" * (MAX_VALUE_BYTES - 1) + "\n",
    ' "quoted" \\back\\slash\' $HOME ${X} `cmd` ',
    "\t\x01\x7f\u2028\ufeff",
])
values = st.one_of(plain_values, edge_values)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="secretstore-props-")
        self.store = Store(os.path.join(self.root, "store"))
        self.identity = Identity.generate("props")
        self.model: dict[Scope, dict[str, str]] = {scope: {} for scope in SCOPES}
        self.data_keys: dict[Scope, bytes] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    scopes = Bundle("scopes")

    @initialize(target=scopes)
    def scopes_in_use(self) -> object:
        from hypothesis.stateful import multiple

        return multiple(*SCOPES)

    @rule(scope=scopes, name=names, value=values)
    def set(self, scope: Scope, name: str, value: str) -> None:
        created = self.store.set(scope, name, value, self.identity)
        assert created == (name not in self.model[scope])
        self.model[scope][name] = value

    @rule(scope=scopes, name=names)
    def delete(self, scope: Scope, name: str) -> None:
        if name in self.model[scope]:
            self.store.delete(scope, name, self.identity)
            del self.model[scope][name]
        else:
            with pytest.raises(NotFoundError):
                self.store.delete(scope, name, self.identity)

    @rule(scope=scopes, name=names)
    def get(self, scope: Scope, name: str) -> None:
        if name in self.model[scope]:
            assert self.store.get(scope, name, self.identity) == self.model[scope][name]
        else:
            with pytest.raises(NotFoundError):
                self.store.get(scope, name, self.identity)

    @rule(scope=scopes)
    def list(self, scope: Scope) -> None:
        assert [name for name, _ in self.store.list(scope)] == sorted(self.model[scope])

    @rule(scope=scopes)
    def read_all(self, scope: Scope) -> None:
        assert self.store.read(scope, self.identity) == self.model[scope]

    @rule(which=st.one_of(st.none(), st.lists(st.sampled_from(SCOPES), min_size=1, unique=True)))
    def rotate(self, which: list[Scope] | None) -> None:
        existing = [s for s in SCOPES if os.path.exists(self.store.path(s))]
        before = {s: self._data_key(s) for s in existing}
        targets = None if which is None else [s for s in which if s in existing]
        self.store.rotate(targets, self.identity)
        rotated = existing if targets is None else targets
        for scope in existing:
            changed = self._data_key(scope) != before[scope]
            assert changed == (scope in rotated), scope

    def _data_key(self, scope: Scope) -> bytes:
        unlocked = self.store.unlock(scope, self.identity)
        assert unlocked is not None
        return unlocked.keys.data_key

    @invariant()
    def files_are_canonical_and_agree(self) -> None:
        for scope in SCOPES:
            data = fsio.read_file(self.store.path(scope))
            if data is None:
                assert not self.model[scope]
                continue
            read = scopefile._parse_v3(data, scope.relpath)
            assert read is not None, "the writer wrote a file its reader declines"
            for entry in read.entries.values():
                entry.history  # noqa: B018  # every chunk matches its entry's length and digest
            kept = (read.mac, read.signature)
            whole = fsio.join(scopefile.serialize_v4_parts(read, lambda _digest, kept=kept: kept))
            if data.count(b"\n[[seals]]\n") == 1:  # written whole: exactly what the full writer writes
                assert whole == data
            else:  # with sections appended: what the full writer would write for the same entries
                again = scopefile.parse(whole, scope.relpath)
                assert list(again.entries) == list(read.entries)
                assert [(e.current, e.updated, e.writer, e.rotate, e.history) for e in again.entries.values()] == [
                    (e.current, e.updated, e.writer, e.rotate, e.history) for e in read.entries.values()]
            directory = os.path.dirname(self.store.path(scope))
            assert not [f for f in os.listdir(directory) if fsio.is_temp_name(f)]


StoreMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("SECRETSTORE_PROPERTY_EXAMPLES", "25")),
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_store_behaves_like_a_dict = StoreMachine.TestCase


# --- round trips at the edge of every limit ------------------------------------------


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Identity]:
    return Store(str(tmp_path_factory.mktemp("roundtrip"))), Identity.generate("roundtrip")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, value=values)
def test_any_valid_name_and_value_round_trip(shared_store: tuple[Store, Identity], name: str,
                                             value: str) -> None:
    store, identity = shared_store
    store.set(Scope("team"), name, value, identity)
    assert store.get(Scope("team"), name, identity) == value


@pytest.mark.parametrize(
    "value",
    [
        "a" * MAX_VALUE_BYTES,
        "\u00e9" * (MAX_VALUE_BYTES // 2),
        "\U0001f511" * (MAX_VALUE_BYTES // 4),
        "€" * (MAX_VALUE_BYTES // 3) + "a",
    ],
    ids=["ascii", "2-byte", "4-byte", "3-byte-plus-1"],
)
def test_value_of_exactly_64_kib_is_accepted(tmp_path, value: str) -> None:
    assert utf8_size(value) == MAX_VALUE_BYTES
    store, identity = Store(str(tmp_path / "s")), Identity.generate()
    store.set(Scope("team"), "BIG", value, identity)
    assert store.get(Scope("team"), "BIG", identity) == value


@pytest.mark.parametrize(
    "value",
    ["a" * (MAX_VALUE_BYTES + 1), "\u00e9" * (MAX_VALUE_BYTES // 2) + "a",
     "\U0001f511" * (MAX_VALUE_BYTES // 4 + 1), "", "nul\x00inside"],
    ids=["ascii+1", "2-byte+1", "4-byte+4", "empty", "nul"],
)
def test_value_past_a_limit_is_refused_and_nothing_written(tmp_path, value: str) -> None:
    store, identity = Store(str(tmp_path / "s")), Identity.generate()
    with pytest.raises(UsageError) as caught:
        store.set(Scope("team"), "BIG", value, identity)
    assert value[:20] not in str(caught.value) or not value
    assert not os.path.exists(store.path(Scope("team")))


@pytest.mark.parametrize(
    "name", ["", "Z" * (MAX_NAME_LENGTH + 1), "1A", "_A", "A-B", "A B", "\u00c9", "A\n", "A.B"]
)
def test_invalid_names_are_refused(tmp_path, name: str) -> None:
    store, identity = Store(str(tmp_path / "s")), Identity.generate()
    with pytest.raises(UsageError):
        store.set(Scope("team"), name, "v", identity)


def test_64_kib_value_round_trips_through_the_console_script(cli_run) -> None:
    value = ("\u00e9" * (MAX_VALUE_BYTES // 2 - 2) + "a\r\n\n").encode()
    assert len(value) == MAX_VALUE_BYTES
    # set drops exactly one trailing newline from stdin, so send one more
    done = cli_run("set", "team", "--name=BIG", "--value", "-", input=value + b"\n")
    assert done.returncode == 0, done.stderr
    got = cli_run("get", "team", "--name=BIG")
    assert got.returncode == 0, got.stderr
    assert got.stdout == value


@pytest.mark.parametrize(
    ("scope_id", "ok"),
    [("p" * MAX_ID_LENGTH, True), ("p" * (MAX_ID_LENGTH + 1), False), ("a.b-c_d", True),
     ("0", True), ("..", False), ("a..b", False), (".hidden", False), ("-x", False), ("a/b", False),
     ("\u00e9", False)],
)
def test_scope_id_limits(tmp_path, scope_id: str, ok: bool) -> None:
    store, identity = Store(str(tmp_path / "s")), Identity.generate()
    if not ok:
        with pytest.raises(UsageError):
            Scope.of("project", scope_id)
        return
    scope = Scope.of("project", scope_id)
    store.set(scope, "A", "v", identity)
    assert store.get(scope, "A", identity) == "v"
    assert scope in store.scopes()
