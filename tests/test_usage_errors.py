"""Usage errors never repeat a word that might be a secret value, and their hints are true.

click's "Got unexpected extra argument(s) (horse battery staple)" repeated an
unquoted value; "No such option: --xyz" and "No such command 'x'" repeat
whatever sits where an option or command name goes; "unknown entity 'x'"
repeated the word in ENTITY's place, where ``set --name X VALUE`` puts the
value. Each is checked through the real console script and in-process, on
both spellings (``set`` and ``secrets set``).
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from secretstore.cli import run
from secretstore.cli.declarations import ROOT
from secretstore.cli.spec import Command, Group

Run = Callable[..., subprocess.CompletedProcess[bytes]]

# Fake values only: what must never come back on stderr.
FRAGMENTS = ("horse", "battery", "staple", "fake_live_SECRET1", "FAKE-BEGIN", "lisst")
VALUE_HINT = ("secretstore: hint: quote a value that has spaces (--value='...'), or pass it on stdin (--value -) "
              "or in a file (--value-file PATH)")


def in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code = run(list(argv))
    out, err = capsys.readouterr()
    assert out == ""
    return code, err


def assert_nothing_echoed(err: str) -> None:
    assert err.startswith("secretstore: error: ") and "Traceback" not in err, err
    assert all(line.startswith("secretstore: ") for line in err.splitlines()), err
    for fragment in FRAGMENTS:
        assert fragment not in err, err


# --- Defect A: extra arguments ------------------------------------------------------------------

SPACED_VALUE = ["--name=DB_PASSWORD", "--value=correct", "horse", "battery", "staple"]


@pytest.mark.parametrize("spelling", [["set"], ["secrets", "set"]], ids=["set", "secrets-set"])
def test_an_unquoted_value_is_counted_not_echoed(cli_run: Run, capsys, monkeypatch, spelling) -> None:  # type: ignore[no-untyped-def]
    expected = ("secretstore: error: got 3 unexpected extra arguments (not shown: they may be part of a secret value)\n"
                f"{VALUE_HINT}; see 'secretstore {' '.join(spelling)} --help'\n")
    done = cli_run(*spelling, "team", *SPACED_VALUE)
    assert (done.returncode, done.stdout, done.stderr.decode()) == (2, b"", expected)
    code, err = in_process(capsys, monkeypatch, *spelling, "team", *SPACED_VALUE)
    assert (code, err) == (2, expected)


@pytest.mark.parametrize("spelling", [["set"], ["secrets", "set"]], ids=["set", "secrets-set"])
def test_a_value_given_as_an_argument_is_counted_not_echoed(cli_run: Run, spelling) -> None:  # type: ignore[no-untyped-def]
    done = cli_run(*spelling, "team", "--name", "X", "fake_live_SECRET1")
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "secretstore: error: got 1 unexpected extra argument (not shown: it may be part of a secret value)",
        f"{VALUE_HINT}; see 'secretstore {' '.join(spelling)} --help'",
    ]


def _commands(group: Group, path: list[str]) -> Iterator[tuple[list[str], Command]]:
    for item in group.commands:
        if isinstance(item, Group):
            yield from _commands(item, [*path, item.name])
        else:
            for name in (item.name, *item.aliases):
                yield [*path, name], item


EVERY_COMMAND = [(path, command) for path, command in _commands(ROOT, [])
                 if not any(argument.variadic for argument in command.args())]  # exec takes every word


@pytest.mark.parametrize(("path", "command"), EVERY_COMMAND, ids=[" ".join(path) for path, _ in EVERY_COMMAND])
def test_every_command_counts_extra_arguments(capsys, monkeypatch, path, command) -> None:  # type: ignore[no-untyped-def]
    filled = ["team"] * len(command.args())  # every argument, then two more than it takes
    code, err = in_process(capsys, monkeypatch, *path, *filled, "fake_live_SECRET1", "horse")
    assert code == 2
    assert_nothing_echoed(err)
    assert err.splitlines()[0] == (
        "secretstore: error: got 2 unexpected extra arguments (not shown: they may be part of a secret value)")


def test_exec_through_typer_still_passes_every_word_to_the_command(cli_run: Run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    """exec's CMD takes every word: no extra argument for typer to count (the fast parser never
    sends exec there, so typer is called directly)."""
    assert cli_run("set", "team", "--name=A", "--value=fake-a").returncode == 0
    typer_only = "import sys; from secretstore.cli import framework; sys.exit(framework.run_typer(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", typer_only, "exec", "--", sys.executable, "-c",
                           "import sys; print(sys.argv[1:])", "x", "y z"], capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, b"['x', 'y z']\n"), done.stderr


# --- other click messages: names kept, value-like words not ---------------------------------------


@pytest.mark.parametrize("spelling", [["set"], ["secrets", "set"]], ids=["set", "secrets-set"])
@pytest.mark.parametrize("word", ["--fake_live_SECRET1", "-----FAKE-BEGIN-----", "--fake@horse"])
def test_a_dash_value_in_an_options_place_is_not_echoed(cli_run: Run, capsys, monkeypatch, spelling, word) -> None:  # type: ignore[no-untyped-def]
    expected = [
        "secretstore: error: no such option (not shown: a word that starts with '-' but is no option name may be a value)",
        "secretstore: hint: a value that starts with '-' goes after its option (--value=-...) or on stdin (--value -)",
    ]
    done = cli_run(*spelling, "team", "--name=X", word)
    assert (done.returncode, done.stderr.decode().splitlines()) == (2, expected)
    code, err = in_process(capsys, monkeypatch, *spelling, "team", "--name=X", word)
    assert (code, err.splitlines()) == (2, expected)


def test_a_misspelt_option_is_still_named(cli_run: Run) -> None:
    done = cli_run("list", "team", "--bogus")
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[0].startswith("secretstore: error: No such option: --bogus")
    done = cli_run("export", "--apikey", "x")
    assert "No such option: --apikey (Possible options: --apiKey)" in done.stderr.decode()
    done = cli_run("set", "team", "--name=X", "--value_file=k.pem")  # hidden ('_'), but the options it resembles are named
    assert done.returncode == 2
    assert "did you mean --value or --value-file?" in done.stderr.decode()
    assert "k.pem" not in done.stderr.decode()


def test_a_command_name_is_named_a_value_is_not(cli_run: Run) -> None:
    done = cli_run("secrets", "sett")
    assert (done.returncode, done.stderr.decode().splitlines()[0]) == (
        2, "secretstore: error: No such command 'sett'. Did you mean 'set'?")
    done = cli_run("secrets", "fake_live_SECRET1")
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[0] == (
        "secretstore: error: no such command (not shown: the word does not look like a command name and may be a value)")
    assert_nothing_echoed(done.stderr.decode())
    done = cli_run("lisst_x")  # hidden, but the command it resembles is named
    assert done.stderr.decode().splitlines()[1].startswith("secretstore: hint: did you mean 'list'?")
    assert_nothing_echoed(done.stderr.decode())


@pytest.mark.parametrize("spelling", [["set"], ["secrets", "set"]], ids=["set", "secrets-set"])
def test_a_value_in_entitys_place_is_not_echoed(cli_run: Run, capsys, monkeypatch, spelling) -> None:  # type: ignore[no-untyped-def]
    """``set --name X VALUE``: ENTITY left out, the value takes its place."""
    message = ("secretstore: error: unknown entity: ENTITY is team, project or cluster "
               "(what was given is not shown: it may be a value)\n")
    done = cli_run(*spelling, "--name=DB_PASSWORD", "fake_live_SECRET1")
    assert (done.returncode, done.stderr.decode()) == (2, message)
    code, err = in_process(capsys, monkeypatch, *spelling, "--name=DB_PASSWORD", "fake_live_SECRET1")
    assert (code, err) == (2, message)
    done = cli_run(*spelling, "--name=DB_PASSWORD", "Projet", "--value=fake")  # a near miss: named by what it resembles
    assert done.stderr.decode() == message + "secretstore: hint: did you mean project?\n"


# --- Defect B: the missing store's hint -------------------------------------------------------------


def test_the_missing_store_hint_after_init_is_true(cli_run: Run, isolated_env) -> None:  # type: ignore[no-untyped-def]
    """After ``init`` (an identity only), list says what creates a store, and doing it works."""
    assert cli_run("init").returncode == 0
    done = cli_run("secrets", "list", "team")
    assert (done.returncode, done.stderr.decode().splitlines()) == (1, [
        f"secretstore: error: no store at {isolated_env['store']}",
        "secretstore: hint: check --store / $SECRETSTORE_DIR (or 'secretstore where'); 'secretstore set' creates "
        "the store with its first secret, 'secretstore init --team ID' an empty one",
    ])
    assert cli_run("init").returncode == 1  # 'init' again is no way out: the identity exists
    done = cli_run("init", "--team", "acme")
    assert done.returncode == 0, done.stderr
    assert cli_run("secrets", "list", "team").stdout == b"No data found\n"
