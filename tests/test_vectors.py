"""Every vector in tests/vectors/ opens, or fails closed, exactly as its ``expect:`` header says.

In-process, through ``Store(...).unlock(...)`` and a decryption of every value,
both for the whole vector file (header comments included, so the reference
TOML reader parses it) and for the scope-file bytes alone (the writer's exact
output, so the fast reader parses it). A handful also go through the real
console script: exit 1, one ``secretstore: error:`` line (and at most a hint
line) on stderr, no traceback, no value on either stream.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore import scopefile
from secretstore.errors import (
    SecretStoreError,
    StoreFormatError,
    TamperedError,
    UnsupportedVersionError,
)
from secretstore.identity import Identity, parse_identity_text
from secretstore.store import Scope, Store

VECTORS = Path(__file__).parent / "vectors"
REPO = Path(__file__).resolve().parent.parent
EXPECTATIONS = {"success", "mac failure", "decrypt failure", "unsupported version", "parse error"}


class Vector:
    def __init__(self, path: Path) -> None:
        self.name = path.stem
        self.raw = path.read_bytes()
        head, sep, self.body = self.raw.partition(b"# ---\n")
        assert sep, f"{path.name}: no '# ---' line ending the header"
        self.header: dict[str, str] = {}
        for line in head.decode("ascii").splitlines():
            assert line.startswith("# ") and ": " in line, f"{path.name}: bad header line {line!r}"
            key, value = line[2:].split(": ", 1)
            self.header[key] = value
        self.expect = self.header["expect"]
        self.relpath = self.header["path"]
        self.values = json.loads(self.header["values"]) if "values" in self.header else None

    @property
    def scope(self) -> Scope:
        directory, _, filename = self.relpath.rpartition("/")
        scope_id = filename.removesuffix(".toml")
        if not directory:
            return Scope("team")
        return Scope({"projects": "project", "clusters": "cluster"}[directory], scope_id)

    def identity(self) -> Identity:
        source = VECTORS / self.header["identity"]
        return parse_identity_text(source.read_text("ascii"), str(source))


ALL = sorted(VECTORS.glob("*.toml"))
IDS = [path.stem for path in ALL]


def place(root: Path, vector: Vector, data: bytes) -> Store:
    target = root / vector.relpath
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.write_bytes(data)
    target.chmod(0o600)
    return Store(str(root))


def open_all(store: Store, vector: Vector) -> dict[str, str]:
    unlocked = store.unlock(vector.scope, vector.identity())
    assert unlocked is not None
    values = unlocked.values()
    for name, entry in unlocked.file.entries.items():  # history must decrypt too
        for version in entry.history:
            scopefile.decrypt(unlocked.file, unlocked.keys, name, version, vector.relpath)
    return values


def check_outcome(store: Store, vector: Vector) -> None:
    if vector.expect == "success":
        assert open_all(store, vector) == vector.values
        return
    with pytest.raises(SecretStoreError) as caught:
        open_all(store, vector)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    if vector.expect == "mac failure":
        assert type(error) is TamperedError and "MAC" in message, message
    elif vector.expect == "decrypt failure":
        assert type(error) is TamperedError and "MAC" not in message, message
    elif vector.expect == "unsupported version":
        assert type(error) is UnsupportedVersionError, message
        assert error.hint and "newer" in error.hint
    else:
        assert type(error) is StoreFormatError, message


def test_vectors_are_present_and_well_formed() -> None:
    assert len(ALL) >= 50
    seen = {Vector(path).expect for path in ALL}
    assert seen == EXPECTATIONS
    for identity in ("identity-a", "identity-b", "identity-c"):
        assert "TEST-ONLY" in (VECTORS / identity).read_text("ascii")


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_vector_whole_file(path: Path, tmp_path: Path) -> None:
    vector = Vector(path)
    assert vector.expect in EXPECTATIONS
    check_outcome(place(tmp_path / "store", vector, vector.raw), vector)


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_vector_scope_bytes_alone(path: Path, tmp_path: Path) -> None:
    vector = Vector(path)
    check_outcome(place(tmp_path / "store", vector, vector.body), vector)


def test_untouched_vectors_take_the_fast_reader() -> None:
    """The success vectors written by the canonical writer parse without tomllib."""
    for name in ("success-team", "success-project-two-recipients",
                 "success-cluster-history-deleted", "success-no-secrets", "flip-mac"):
        vector = Vector(VECTORS / f"{name}.toml")
        fast = scopefile.parse_canonical(vector.body)
        assert fast is not None, name
        assert fast == scopefile.parse_reference(vector.body, name)


def test_generator_reproduces_the_committed_vectors() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-vectors"), "--check"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr


CLI_CASES = [
    "success-team",
    "flip-ciphertext",
    "flip-sealed-key",
    "swap-values-remac",
    "move-value-from-project-remac",
    "rollback-recipients",
    "truncate-in-ciphertext",
    "truncate-after-nonce",
    "unknown-version",
    "unknown-field-entry",
    "flip-id",
    "flip-utf8",
]


def _scope_args(vector: Vector) -> list[str]:
    scope = vector.scope
    args = [scope.entity]
    if scope.scope_id is not None:
        args.append(f"--id={scope.scope_id}")
    return args


@pytest.mark.parametrize("name", CLI_CASES)
def test_vector_through_the_console_script(name: str, tmp_path: Path, cli_run, isolated_env) -> None:
    vector = Vector(VECTORS / f"{name}.toml")
    place(Path(isolated_env["store"]), vector, vector.body)
    identity_file = Path(isolated_env["identity"])
    identity_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity_file.write_bytes((VECTORS / vector.header["identity"]).read_bytes())
    identity_file.chmod(0o600)
    # the value an attack would target: the first name in document order (if the file parses)
    secret = "API_KEY" if name != "move-value-from-project-remac" else "TOKEN"
    done = cli_run("get", *_scope_args(vector), f"--name={secret}")
    stderr = done.stderr.decode("utf-8", "replace")
    if vector.expect == "success":
        assert done.returncode == 0, stderr
        assert vector.values is not None
        assert done.stdout.decode() == vector.values[secret]
        return
    assert done.returncode == 1, stderr
    assert done.stdout == b""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("secretstore: error: "), stderr
    assert all(line.startswith("secretstore: hint: ") for line in lines[1:]) and len(lines) <= 2
    assert "Traceback" not in stderr and "internal error" not in stderr
    if vector.expect == "mac failure":
        assert "MAC" in lines[0]
    if vector.expect == "unsupported version":
        assert "newer" in stderr


@pytest.mark.parametrize("name", ["flip-tag", "swap-values-remac", "truncate-in-mac"])
def test_tampered_scope_fails_exec_closed(name: str, cli_run, isolated_env) -> None:
    """exec must not run the command with part of the secrets, or with forged ones."""
    vector = Vector(VECTORS / f"{name}.toml")
    assert vector.relpath == "team.toml"
    place(Path(isolated_env["store"]), vector, vector.body)
    identity_file = Path(isolated_env["identity"])
    identity_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity_file.write_bytes((VECTORS / "identity-a").read_bytes())
    identity_file.chmod(0o600)
    marker = Path(isolated_env["store"]).parent / "ran"
    done = cli_run("exec", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1, stderr
    assert not marker.exists()
    lines = stderr.splitlines()
    assert lines[0].startswith("secretstore: error: ") and len(lines) <= 2, stderr
    assert "Traceback" not in stderr
