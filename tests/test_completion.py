"""Shell completion: the fast answer speaks typer's protocol exactly, in-process and through the script.

typer's own answer comes from ``cli.framework.run_typer`` (the click objects
typer builds from the same declarations); the fast answer from
``cli.completion``. bash replies must be byte-identical; zsh and fish replies
equal once whitespace is normalised (typer wraps help texts through rich at
80 columns, the fast answer keeps them on one line). Fake values only.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretstore.cli import completion, framework
from secretstore.identity import resolve_identity
from secretstore.store import TEAM, Scope, Store
from tests.conftest import console_script

Run = Callable[..., subprocess.CompletedProcess[bytes]]

LINES = [
    "secretstore ", "secretstore se", "secretstore -", "secretstore --", "secretstore --store STORE ",
    "secretstore get ", "secretstore get t", "secretstore get team -", "secretstore get team --name ",
    "secretstore get team --name=", "secretstore get team --name=TO", "secretstore get project --id ",
    "secretstore get project --id prj42 --name ", "secretstore get cluster --id=gpu-a --name ",
    "secretstore secrets ", "secretstore secrets l", "secretstore secrets set project --id p",
    "secretstore recipients ", "secretstore recipients add --", "secretstore recipients list --cluster ",
    "secretstore exec --", "secretstore exec --project ", "secretstore exec -- ", "secretstore run --cl",
    "secretstore exec --env A=1 --", "secretstore export --format ", "secretstore export -f j",
    "secretstore import team ", "secretstore list team --json -", "secretstore git ", "secretstore rotate ",
    "secretstore set team --id ", "secretstore inject -", "secretstore nosuch ", "secretstore list --id x ",
    "secretstore --store STORE list project --id ",
]


@pytest.fixture
def store(isolated_env: dict[str, str]) -> Store:
    store = Store(isolated_env["store"])
    me = resolve_identity(create=True)[0]
    store.set_many(TEAM, {"TOKEN": "fake-token-value", "TOOL": "fake-tool-value"}, me)
    store.set(Scope("project", "prj42"), "DB_PASSWORD", "fake-db-value", me)
    store.set(Scope("project", "prj7"), "OTHER", "fake-other-value", me)
    store.set(Scope("cluster", "gpu-a"), "HF_TOKEN", "fake-hf-value", me)
    return store


@contextlib.contextmanager
def request(shell: str, line: str, fish_action: str = "get-args") -> Iterator[None]:
    saved = dict(os.environ)
    os.environ["_SECRETSTORE_COMPLETE"] = f"complete_{shell}"
    if shell == "bash":
        words = completion.split_arg_string(line)
        os.environ["COMP_WORDS"] = line
        os.environ["COMP_CWORD"] = str(len(words) if line.endswith(" ") else len(words) - 1)
    else:
        os.environ["_TYPER_COMPLETE_ARGS"] = line
        os.environ["_TYPER_COMPLETE_FISH_ACTION"] = fish_action
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def answer(shell: str, line: str, way: str, fish_action: str = "get-args") -> tuple[int | None, str]:
    buffer = io.StringIO()
    with request(shell, line, fish_action), contextlib.redirect_stdout(buffer):
        if way == "typer":
            code: int | None = framework.run_typer([])
        else:
            code = completion.answer(f"complete_{shell}")
    return code, buffer.getvalue()


HELP_TEXT = "Show this message and exit."
HELP_PAIRS = [  # (reversed, in order) for bash, zsh and fish (after whitespace is normalised)
    ("--help\n-h\n", "-h\n--help\n"),
    (f'"--help":"{HELP_TEXT}" "-h":"{HELP_TEXT}"', f'"-h":"{HELP_TEXT}" "--help":"{HELP_TEXT}"'),
    (f"--help {HELP_TEXT} -h {HELP_TEXT}", f"-h {HELP_TEXT} --help {HELP_TEXT}"),
]


def help_pair_in_order(reply: str) -> str:
    """click offers ``-h`` and ``--help`` in an order that depends on PYTHONHASHSEED; shells sort or
    show both anyway. Put the pair in one order so the rest of the reply is compared exactly."""
    for reversed_pair, in_order in HELP_PAIRS:
        reply = reply.replace(reversed_pair, in_order)
    return reply


def test_help_pair_in_order_only_swaps_the_pair() -> None:
    assert help_pair_in_order("--store\n--help\n-h\n") == "--store\n-h\n--help\n"
    assert help_pair_in_order("--store\n-h\n--help\n") == "--store\n-h\n--help\n"
    assert help_pair_in_order("--help\n--store\n-h\n") == "--help\n--store\n-h\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_fast_answer_is_typers_answer(store: Store, shell: str) -> None:
    compared = 0
    for template in LINES:
        line = template.replace("STORE", store.root)
        typer_code, typer_out = answer(shell, line, "typer")
        fast_code, fast_out = answer(shell, line, "fast")
        if shell != "bash":  # rich wraps typer's help texts; the words must be the same
            typer_out, fast_out = " ".join(typer_out.split()), " ".join(fast_out.split())
        typer_out, fast_out = help_pair_in_order(typer_out), help_pair_in_order(fast_out)
        assert (fast_code, fast_out) == (typer_code, typer_out), (shell, line)
        compared += 1
    assert compared == len(LINES)


@pytest.mark.parametrize("action", ["is-args"])
def test_fish_asks_whether_there_are_completions(store: Store, action: str) -> None:
    for line in ("secretstore get team --name ", "secretstore exec -- "):
        assert answer("fish", line, "fast", action) == answer("fish", line, "typer", action)


def test_what_is_offered(store: Store) -> None:
    assert answer("bash", "secretstore get team --name ", "fast")[1] == "TOKEN\nTOOL\n"
    assert answer("bash", "secretstore get project --id ", "fast")[1] == "prj42\nprj7\n"
    assert answer("bash", "secretstore exec --cluster ", "fast")[1] == "gpu-a\n"
    assert answer("bash", "secretstore get ", "fast")[1] == "team\nproject\ncluster\n"
    assert answer("bash", "secretstore export --format ", "fast")[1] == "dotenv\njson\nshell\nk8s\n"
    offered = answer("bash", "secretstore ", "fast")[1].split()
    assert {"set", "list", "get", "delete", "exec", "run", "scopes", "where", "secrets"} <= set(offered)
    # a given option is not offered again; a repeatable one is
    assert "--name" not in answer("bash", "secretstore get team --name X --", "fast")[1].split()
    assert "--env" in answer("bash", "secretstore exec --env A=1 --", "fast")[1].split()


def test_never_a_value(store: Store) -> None:
    for shell in ("bash", "zsh", "fish"):
        for line in LINES:
            out = answer(shell, line.replace("STORE", store.root), "fast")[1]
            assert "fake-" not in out, (shell, line)


def test_a_broken_store_means_no_completions_and_no_noise(isolated_env: dict[str, str]) -> None:
    os.makedirs(os.path.join(isolated_env["store"], "projects"))
    Path(isolated_env["store"], "projects", "bad.toml").write_text("not [[ toml")
    Path(isolated_env["store"], "projects").chmod(0o777)  # a loose directory is refused
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert answer("bash", "secretstore get project --id bad --name ", "fast") == (0, "\n")
    assert err.getvalue() == ""


def test_through_the_console_script(store: Store, cli_run: Run) -> None:
    env = {"_SECRETSTORE_COMPLETE": "complete_bash", "COMP_WORDS": "secretstore get team --name T",
           "COMP_CWORD": "4"}
    done = cli_run(env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"TOKEN\nTOOL\n", b"")
    env = {"_SECRETSTORE_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "secretstore get cluster --id "}
    done = cli_run(env=env)
    assert (done.returncode, done.stdout) == (0, b"_arguments '*: :((\"gpu-a\"))'\n")
    env = {"_SECRETSTORE_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "secretstore sc",
           "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    done = cli_run(env=env)
    assert done.stdout == b"scopes\tList team, projects and clusters with their counts.\n"


def test_a_completion_request_imports_no_typer(store: Store) -> None:
    env = {**os.environ, "_SECRETSTORE_COMPLETE": "complete_bash", "COMP_WORDS": "secretstore get team --name ",
           "COMP_CWORD": "4"}
    done = subprocess.run([sys.executable, "-X", "importtime", console_script()],
                          env=env, capture_output=True, timeout=60, check=False)
    modules = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    assert "secretstore.cli.completion" in modules
    assert not {"typer", "typer._click", "click", "rich", "pydantic"} & modules
    assert done.stdout == b"TOKEN\nTOOL\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_typers_script(shell: str, cli_run: Run) -> None:
    done = cli_run("--show-completion", shell)
    assert done.returncode == 0, done.stderr
    assert b"_SECRETSTORE_COMPLETE=complete_" + shell.encode() in done.stdout
    assert done.stderr == b""


def test_install_completion_writes_typers_script(cli_run: Run, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = cli_run("--install-completion", "bash", env={"HOME": str(home)})
    assert done.returncode == 0, done.stderr
    script = home / ".bash_completions" / "secretstore.sh"
    assert b"_SECRETSTORE_COMPLETE=complete_bash" in script.read_bytes()
    assert f"source '{script}'" in (home / ".bashrc").read_text()


def test_bash_really_completes(store: Store, tmp_path: Path) -> None:
    """The installed bash script, run by bash, calls the console script and gets the names."""
    script = subprocess.run([console_script(), "--show-completion", "bash"], capture_output=True, timeout=60,
                            check=True).stdout.decode()
    driver = tmp_path / "drive.sh"
    driver.write_text(
        f"PATH={os.path.dirname(console_script())}:$PATH\n{script}\n"
        "COMP_WORDS=(secretstore get team --name T); COMP_CWORD=4\n"
        "_secretstore_completion secretstore\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "--norc", str(driver)], capture_output=True, timeout=60, check=False)
    assert done.stdout == b"TOKEN\nTOOL\n", done.stderr
