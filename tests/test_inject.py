"""secretstore inject: {{ secret:NAME }} in a template, output 0600, missing names listed. Fake values only."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore.identity import resolve_identity
from secretstore.store import TEAM, Scope, Store

Run = Callable[..., subprocess.CompletedProcess[bytes]]

TEMPLATE = "user: alice\ntoken: {{ secret:API_TOKEN }}\ndb: {{secret:DB_PASSWORD}}\nkeep: {{ other }}\n"


@pytest.fixture
def seeded(isolated_env: dict[str, str]) -> Store:
    store = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    store.set(TEAM, "API_TOKEN", "fake-team-token", me)
    store.set(TEAM, "DB_PASSWORD", "fake-db\npw", me)
    store.set(Scope("project", "prj42"), "API_TOKEN", "fake-project-token", me)
    return store


def test_inject_to_stdout(seeded: Store, cli_run: Run, tmp_path: Path) -> None:
    template = tmp_path / "config.tpl"
    template.write_text(TEMPLATE)
    done = cli_run("inject", "-i", str(template))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == (
        "user: alice\ntoken: fake-team-token\ndb: fake-db\npw\nkeep: {{ other }}\n"
    )
    done = cli_run("inject", "-i", str(template), "--project", "prj42")
    assert b"token: fake-project-token\n" in done.stdout


def test_inject_from_stdin(seeded: Store, cli_run: Run) -> None:
    done = cli_run("inject", "-i", "-", input=b"x={{ secret:API_TOKEN }}")
    assert done.stdout == b"x=fake-team-token"


def test_inject_output_file_is_0600(seeded: Store, cli_run: Run, tmp_path: Path) -> None:
    template = tmp_path / "config.tpl"
    template.write_text(TEMPLATE)
    out = tmp_path / "config.yaml"
    out.write_text("old, world-readable")
    out.chmod(0o644)
    done = cli_run("inject", "-i", str(template), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert "token: fake-team-token" in out.read_text()
    fresh = tmp_path / "fresh.yaml"
    assert cli_run("inject", "--in", str(template), "--out", str(fresh)).returncode == 0
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600


def test_inject_missing_names_are_all_listed_and_nothing_written(
    seeded: Store, cli_run: Run, tmp_path: Path
) -> None:
    template = tmp_path / "t.tpl"
    template.write_text("{{ secret:MISSING_ONE }} {{ secret:API_TOKEN }} {{ secret:MISSING_TWO }}")
    out = tmp_path / "out"
    done = cli_run("inject", "-i", str(template), "-o", str(out))
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "MISSING_ONE" in err and "MISSING_TWO" in err
    assert "fake-" not in err
    assert not out.exists()


def test_inject_unreadable_template(cli_run: Run, tmp_path: Path) -> None:
    done = cli_run("inject", "-i", str(tmp_path / "nope.tpl"))
    assert done.returncode == 2 and b"cannot read" in done.stderr


def test_inject_refuses_an_output_in_a_missing_directory(seeded: Store, cli_run: Run, tmp_path: Path) -> None:
    # It used to create the directories: a typo in -o left a file of secrets where nobody looks.
    template = tmp_path / "t.tpl"
    template.write_text(TEMPLATE)
    target = tmp_path / "typo" / "deeper" / "config.yaml"
    done = cli_run("inject", "-i", str(template), "-o", str(target))
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[0].startswith("secretstore: error: --out: the directory ")
    assert b"fake-" not in done.stderr and done.stdout == b""
    assert not (tmp_path / "typo").exists()
    done = cli_run("inject", "-i", str(template), "-o", str(tmp_path))
    assert done.returncode == 2 and b"is a directory" in done.stderr


def test_inject_refuses_a_malformed_reference_and_writes_nothing(
    seeded: Store, cli_run: Run, tmp_path: Path
) -> None:
    """`{{ secret:db-password }}` and `{{ secret: DB_PASSWORD }}` used to be copied through, exit 0."""
    template = tmp_path / "c.tpl"
    template.write_text("a={{ secret:API_TOKEN }}\nb={{ secret:db-password }}\nc={{ secret: DB_PASSWORD }}\n")
    out = tmp_path / "out.conf"
    done = cli_run("inject", "-i", str(template), "-o", str(out))
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode().splitlines() == [
        "secretstore: error: template line 2: malformed secret reference: not a valid secret name (more on line 3)",
        "secretstore: hint: write {{ secret:NAME }} on one line, 'secret' in lowercase, no blank around the ':'; "
        "NAME is a letter, then letters, digits or '_' (at most 255); nothing was written",
    ]
    assert not out.exists()
    done = cli_run("inject", "-i", "-", input=b"c={{ secret: DB_PASSWORD }}\n")
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode().splitlines()[0] == (
        "secretstore: error: template line 1: malformed secret reference: "
        "a blank after 'secret:' (write {{ secret:DB_PASSWORD }})"
    )
    assert b"fake-" not in done.stderr
    # refused before any secret was read: no audit line claims an inject read them
    from secretstore import audit

    assert [e.fields.get("command") for e in audit.read(seeded.root) if e.fields].count("inject") == 0


def test_inject_leaves_other_template_languages_alone(seeded: Store, cli_run: Run) -> None:
    text = (
        "{{- if .Values.secret }}\npassword: {{ .Values.secret | b64enc }}\n{{- end }}\n"
        "jinja: {{ secret }} {{ secrets.API_TOKEN }} {% if secret %}x{% endif %}\n"
        "token: {{ secret:API_TOKEN }}\n"
    )
    done = cli_run("inject", "-i", "-", input=text.encode())
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == text.replace("{{ secret:API_TOKEN }}", "fake-team-token")
