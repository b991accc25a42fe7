"""export and import through the real console script: round trips, all-or-nothing, one write. Fake values only."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from secretstore import fsio
from secretstore.errors import UsageError
from secretstore.identity import resolve_identity
from secretstore.store import TEAM, Scope, Store
from tests.conftest import console_script

Run = Callable[..., subprocess.CompletedProcess[bytes]]

TRICKY = {
    "MULTI_LINE": "-----BEGIN FAKE KEY-----\nabc\ndef\n-----END FAKE KEY-----\n",
    "QUOTES": "it's a \"fake\" value with 'both' quotes",
    "BACKSLASH": "C:\\fake\\path\\n not a newline \\'",
    "DOLLAR": "fake${HOME}$USER `echo no` $(echo no)",
    "HASH": "value # not a comment",
    "SPACES": "  leading and trailing  ",
    "UNICODE": "fäke ✓ värde",
    "EQUALS": "a=b=c",
}


def _import(cli_run: Run, tmp_path: Path, text: str, *args: str, suffix: str = ".env") -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / f"input{suffix}"
    path.write_text(text, encoding="utf-8")
    return cli_run("import", *args, str(path))


def _seed_tricky(isolated_env: dict[str, str]) -> Store:
    store = Store(isolated_env["store"])
    store.set_many(TEAM, dict(TRICKY), resolve_identity(create=True)[0])
    return store


def test_export_dotenv_round_trips_through_python_dotenv(isolated_env: dict[str, str], cli_run: Run) -> None:
    _seed_tricky(isolated_env)
    done = cli_run("export", "--format", "dotenv")
    assert done.returncode == 0, done.stderr
    parsed = dotenv_values(stream=io.StringIO(done.stdout.decode("utf-8")), interpolate=False)
    assert parsed == TRICKY


def test_dotenv_import_export_import_is_stable(isolated_env: dict[str, str], cli_run: Run, tmp_path: Path) -> None:
    _seed_tricky(isolated_env)
    first = cli_run("export").stdout
    done = _import(cli_run, tmp_path, first.decode("utf-8"), "project", "--id", "copy")
    assert done.returncode == 0, done.stderr
    second = cli_run("export", "--project", "copy").stdout
    assert first == second
    assert Store(isolated_env["store"]).read(Scope("project", "copy"), resolve_identity()[0]) == TRICKY


def test_import_dotenv_syntax(isolated_env: dict[str, str], cli_run: Run, tmp_path: Path) -> None:
    text = (
        "# a comment\n"
        "export EXPORTED=plain\n"
        'DOUBLE="line1\\nline2"\n'
        "SINGLE='keep $NOT_EXPANDED'\n"
        'MULTI="first\nsecond"\n'
    )
    done = _import(cli_run, tmp_path, text, "team")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().count("Set team secret") == 4
    values = Store(isolated_env["store"]).read(TEAM, resolve_identity()[0])
    assert values == {
        "EXPORTED": "plain",
        "DOUBLE": "line1\nline2",
        "SINGLE": "keep $NOT_EXPANDED",
        "MULTI": "first\nsecond",
    }


def test_json_round_trip_and_stdin(isolated_env: dict[str, str], cli_run: Run) -> None:
    done = cli_run("import", "cluster", "--id", "gpu-a", "-", "--format", "json",
                   input=json.dumps(TRICKY).encode("utf-8"))
    assert done.returncode == 0, done.stderr
    out = cli_run("export", "--cluster", "gpu-a", "--format", "json")
    assert json.loads(out.stdout) == TRICKY


def test_shell_export_survives_bash_eval(isolated_env: dict[str, str], cli_run: Run, tmp_path: Path) -> None:
    _seed_tricky(isolated_env)
    script = tmp_path / "exported.sh"
    script.write_bytes(cli_run("export", "--format", "shell").stdout)
    names = " ".join(sorted(TRICKY))
    dump = f'eval "$(cat {script})"; for n in {names}; do printf "%s\\0%s\\0" "$n" "${{!n}}"; done'
    done = subprocess.run(["bash", "-c", dump], capture_output=True, timeout=30, check=True,
                          env={"PATH": os.environ["PATH"]})
    parts = done.stdout.decode("utf-8").split("\0")[:-1]
    assert dict(zip(parts[::2], parts[1::2], strict=True)) == TRICKY


def test_k8s_export(isolated_env: dict[str, str], cli_run: Run) -> None:
    _seed_tricky(isolated_env)
    done = cli_run("export", "--format", "k8s", "--k8s-name", "train-secrets", "--namespace", "ml")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[:2] == ["apiVersion: v1", "kind: Secret"]
    assert '  name: "train-secrets"' in lines and '  namespace: "ml"' in lines
    data = {}
    for line in lines[lines.index("data:") + 1 :]:
        key, encoded = (part.strip().strip('"') for part in line.split(":", 1))
        data[key] = base64.b64decode(encoded).decode("utf-8")
    assert data == TRICKY


def test_export_uses_precedence_and_context(isolated_env: dict[str, str], cli_run: Run, tmp_path: Path) -> None:
    store = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    store.set(TEAM, "SHARED", "fake-team", me)
    store.set(TEAM, "T", "fake-t", me)
    store.set(Scope("project", "prj42"), "SHARED", "fake-project", me)
    (tmp_path / ".secretstore.toml").write_text('project = "prj42"\n')
    done = subprocess.run([console_script(), "export", "--format", "json"], capture_output=True,
                          cwd=tmp_path, timeout=60, check=False)
    assert json.loads(done.stdout) == {"SHARED": "fake-project", "T": "fake-t"}


def test_export_bad_format_is_usage_error(cli_run: Run) -> None:
    done = cli_run("export", "--format", "yaml")
    assert done.returncode == 2 and b"yaml" in done.stderr


def test_import_is_all_or_nothing(isolated_env: dict[str, str], cli_run: Run, tmp_path: Path) -> None:
    store = Store(isolated_env["store"])
    store.set(TEAM, "EXISTING", "fake-existing", resolve_identity(create=True)[0])
    before = Path(store.path(TEAM)).read_bytes()
    for text in ("GOOD=fake-1\nbad-name=fake-2\nALSO_GOOD=fake-3\n", "GOOD=fake-1\nEMPTY=\n"):
        done = _import(cli_run, tmp_path, text, "team")
        assert done.returncode == 2, done.stderr
        assert b"fake-" not in done.stderr
        assert Path(store.path(TEAM)).read_bytes() == before
    done = _import(cli_run, tmp_path, "GOOD=fake-1\n", "project", "--id", "fresh")
    assert done.returncode == 0
    bad = _import(cli_run, tmp_path, "0BAD=x\n", "cluster", "--id", "fresh")
    assert bad.returncode == 2
    assert not os.path.exists(store.path(Scope("cluster", "fresh")))


def test_import_dry_run_writes_nothing(isolated_env: dict[str, str], cli_run: Run, tmp_path: Path) -> None:
    store = Store(isolated_env["store"])
    store.set(TEAM, "OLD", "fake-old", resolve_identity(create=True)[0])
    before = Path(store.path(TEAM)).read_bytes()
    done = _import(cli_run, tmp_path, "OLD=fake-new\nNEW=fake-x\n", "team", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [
        "Would replace team secret 'OLD' (replaced)",
        "Would set team secret 'NEW' (new)",
    ]
    assert Path(store.path(TEAM)).read_bytes() == before


def test_import_needs_id_for_project(cli_run: Run, tmp_path: Path) -> None:
    done = _import(cli_run, tmp_path, "A=fake\n", "project")
    assert done.returncode == 2 and b"--id" in done.stderr


def test_set_many_is_one_atomic_write(isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    writes: list[str] = []
    real = fsio.atomic_write
    real_append = fsio.append_at

    def counting(path: str, data: bytes, mode: int = fsio.FILE_MODE) -> None:
        writes.append(path)
        real(path, data, mode)

    def counting_append(path: str, data: bytes, offset: int, read: fsio.OpenFile | None) -> bool:
        writes.append(path)  # one name changed: a section appended (FORMAT.md, version 4)
        return real_append(path, data, offset, read)

    def store_writes() -> list[str]:  # the reader's trust state (outside the store) is not counted
        return [path for path in writes if path.startswith(store.root)]

    monkeypatch.setattr(fsio, "atomic_write", counting)
    monkeypatch.setattr(fsio, "append_at", counting_append)
    created = store.set_many(TEAM, {f"N{i}": f"fake-{i}" for i in range(20)}, me)
    assert store_writes() == [store.path(TEAM)]
    assert sorted(created) == sorted(f"N{i}" for i in range(20))
    assert store.set_many(TEAM, {"N1": "fake-changed"}, me) == []
    with pytest.raises(UsageError):
        store.set_many(TEAM, {"OK": "fake", "bad name": "fake"}, me)
    assert len(store_writes()) == 2
    assert store.read(TEAM, me)["N1"] == "fake-changed"


def test_import_never_echoes_an_invalid_name(cli_run: Callable[..., Any], tmp_path: Path, isolated_env: dict[str, str]) -> None:
    """In a mangled .env the 'name' is often a pasted value: say where, not what."""
    env_file = tmp_path / "mangled.env"
    env_file.write_text("GOOD=fake-good\nsk-live-fakefake123456=x\n")
    done = cli_run("import", "team", str(env_file))
    assert done.returncode == 2
    assert b"entry 2 has an invalid secret name" in done.stderr
    assert b"fakefake123456" not in done.stderr
    assert not Path(isolated_env["store"], "team.toml").exists()


@pytest.mark.parametrize(("text", "args", "said"), [
    ("", (), "nothing to import: stdin holds no secrets"),
    ("# only a comment\n\n", ("--dry-run",), "nothing to import: stdin holds no secrets"),
    ("{}", ("--format", "json"), "nothing to import: stdin holds no secrets"),
    ("EMPTY=\nALSO_EMPTY=\n", ("--skip-empty",),
     "nothing to import: every entry of stdin has an empty value, and --skip-empty left them all out"),
])
def test_an_import_of_nothing_is_refused_not_a_quiet_success(
        isolated_env: dict[str, str], cli_run: Run, text: str, args: tuple[str, ...], said: str) -> None:
    # `dump | secretstore import team -` where dump failed feeds an empty stdin: exit 0 would hide it.
    store = Store(isolated_env["store"])
    store.set(TEAM, "EXISTING", "fake-existing", resolve_identity(create=True)[0])
    before = Path(store.path(TEAM)).read_bytes()
    done = cli_run("import", "team", *args, "-", input=text.encode())
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode().splitlines() == [
        f"secretstore: error: {said}",
        "secretstore: hint: nothing was written; if another command fed this input, check that it succeeded",
    ]
    assert Path(store.path(TEAM)).read_bytes() == before



@pytest.mark.parametrize(("text", "line"), [
    ("A=fake-a\nghp_FAKEleak9abcdef\n", 2),  # a token shaped like a name
    ("A=fake-a\n\nexport sk_live_FAKEleak9abcdef\n", 3),
    ("A=fake-a\nsk-live-FAKEleak9abcdef\n", 2),  # not shaped like a name
])
def test_a_bare_line_is_named_by_its_number_never_echoed(
        isolated_env: dict[str, str], cli_run: Run, tmp_path: Path, text: str, line: int) -> None:
    """A lone token on a .env line is more often a pasted value than a key: import and
    exec --env-file say which line, never what it holds, and import writes nothing."""
    env_file = tmp_path / "b.env"
    env_file.write_text(text)
    said = [f"secretstore: error: {env_file}: line {line} has no '=' "
            "(expected NAME=value; the line is not shown, in case it is a value)"]
    done = cli_run("import", "team", str(env_file))
    assert (done.returncode, done.stdout, done.stderr.decode().splitlines()) == (2, b"", said)
    assert not Path(isolated_env["store"], "team.toml").exists()
    done = cli_run("exec", "--env-file", str(env_file), "--", "true")
    assert (done.returncode, done.stdout, done.stderr.decode().splitlines()) == (2, b"", said)
    assert b"FAKEleak9" not in done.stderr and b"fake-a" not in done.stderr


@pytest.mark.parametrize(("text", "said"), [
    ('{"A": "fake-a", "sk-live-FAKEleak9": 5}',
     "value of entry 2 must be a string, got number (its key is not a valid name; not shown, in case it is a value)"),
    ('{"sk-live-FAKEleak9": "fake-a", "sk-live-FAKEleak9": "fake-b"}',
     "entry 2 repeats the key of an earlier entry (its key is not a valid name; not shown, in case it is a value)"),
])
def test_json_import_never_echoes_a_key_that_is_not_a_name(
        isolated_env: dict[str, str], cli_run: Run, text: str, said: str) -> None:
    done = cli_run("import", "team", "--format", "json", "-", input=text.encode())
    assert done.returncode != 0 and done.stdout == b""
    assert done.stderr.decode().splitlines() == [f"secretstore: error: stdin: {said}"]
    assert not Path(isolated_env["store"], "team.toml").exists()
