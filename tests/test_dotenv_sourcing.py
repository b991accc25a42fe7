"""``export --format dotenv`` is safe to ``source``: sh (dash and bash, ``set -a; . ./.env``) and
python-dotenv (``interpolate=False``) read back the same value, and nothing is ever executed.

A value no form can carry for both readers is refused, naming the variable only.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dotenv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretstore.errors import UsageError
from secretstore.formats import dotenv_quote, render
from secretstore.rules import MAX_VALUE_BYTES

SHELLS = [pytest.param(name, marks=pytest.mark.skipif(shutil.which(name) is None, reason=f"needs {name}"))
          for name in ("dash", "bash")]

CANARY = "SS_CANARY_FILE"

# Values both readers must get back exactly; several used to run commands or come back corrupted.
SAFE = {
    "SS_SQUOTE_ESCAPE": "x'; touch SS_CANARY_FILE #",
    "SS_PASSWORD_QUOTE": "pa'ss\"wo'rd",
    "SS_DQUOTE": 'say "hi" and \\"bye\\"',
    "SS_SUBST": "$(touch SS_CANARY_FILE)",
    "SS_BACKTICK": "`touch SS_CANARY_FILE`",
    "SS_BRACES": "${HOME} ${SS_UNSET:-default} $HOME $$ $1 $@",
    "SS_BACKSLASHES": "C:\\fake\\path \\n \\t \\' \\\" end",
    "SS_DOUBLE_BACKSLASH": "a\\\\b\\\\\\c",
    "SS_TRAILING_BACKSLASH": "ends with \\",
    "SS_TRAILING_BACKSLASH_QUOTE": "it's \\",
    "SS_NEWLINES": "line one\nline two\n\n",
    "SS_PEM": "-----BEGIN FAKE KEY-----\nMIIBfakefake+/=\n-----END FAKE KEY-----\n",
    "SS_LINE_SEPARATORS": "a\u2028b\u2029c\x85d\x0be\x0cf",
    "SS_HASH": "#not a comment # still value",
    "SS_EQUALS": "a=b=c==",
    "SS_SPACES": "  padded value \t ",
    "SS_ONLY_SPACES": "   ",
    "SS_UNICODE": "pässwörd-ключ-密码-🔑",
    "SS_SHELL_META": "; rm -rf / && | > < * ? ~ ! % { } [ ]",
    "SS_DQUOTE_INJECTION": '"; touch SS_CANARY_FILE; "',
    "SS_NEWLINE_INJECTION": "x\ntouch SS_CANARY_FILE\n",
    "SS_EXPORT": "export FOO=bar",
    "SS_CONTROL": "\x01\x1b[31mred\x7f",
}

# Values no single line both readers agree on can carry: refused.
REFUSED = {
    "SS_CR": "a\rb",
    "SS_CRLF_PEM": "-----BEGIN FAKE-----\r\nAAAA\r\n",
    "SS_QUOTE_AND_DOLLAR": "it's $HOME",
    "SS_QUOTE_AND_BACKTICK": "it's `x`",
    "SS_PAIR_AND_DOLLAR": "a\\\\b$c",
    "SS_TRAILING_BACKSLASH_AND_DOLLAR": "$x\\",
}


def read_with_shell(shell: str, path: Path, names: list[str]) -> dict[str, str]:
    """``set -a; . ./file`` in ``shell`` (cwd = the file's dir), then each variable, NUL-separated."""
    script = "set -a; . ./" + path.name + "; printf '%s\\0' " + " ".join(f'"${name}"' for name in names)
    done = subprocess.run([shell, "-c", script], cwd=path.parent, capture_output=True, timeout=60,
                          check=False, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    assert done.returncode == 0, done.stderr
    parts = done.stdout.split(b"\0")[:-1]
    return dict(zip(names, (part.decode("utf-8") for part in parts), strict=True))


def read_with_python_dotenv(path: Path) -> dict[str, str | None]:
    return dict(dotenv.dotenv_values(path, interpolate=False))


@pytest.mark.parametrize("shell", SHELLS)
def test_tricky_values_read_back_identically_and_run_nothing(tmp_path: Path, shell: str) -> None:
    path = tmp_path / ".env"
    path.write_text(render(SAFE, "dotenv"), encoding="utf-8")
    assert read_with_shell(shell, path, sorted(SAFE)) == SAFE
    assert read_with_python_dotenv(path) == SAFE
    assert not (tmp_path / CANARY).exists()


@pytest.mark.parametrize(("name", "value"), sorted(REFUSED.items()))
def test_values_no_form_can_carry_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(UsageError) as info:
        render({"SS_FINE": "fine", name: value}, "dotenv")
    message = f"{info.value.message} {info.value.hint}"
    assert name in message and "\n" not in message
    assert value not in message and "HOME" not in message.replace(name, "")
    assert "--format json" in (info.value.hint or "") and "--format shell" in (info.value.hint or "")


def test_the_quoting_rule(tmp_path: Path) -> None:
    assert dotenv_quote("A", "plain $x `y` \\n") == "'plain $x `y` \\n'"
    assert dotenv_quote("A", "it's") == '"it\'s"'
    assert dotenv_quote("A", 'a\\b"c') == "'a\\b\"c'"
    assert dotenv_quote("A", 'a\\\\b"c') == '"a\\\\\\\\b\\"c"'
    assert dotenv_quote("A", "end\\") == '"end\\\\"'


def test_the_reported_injection_no_longer_runs(tmp_path: Path, cli_run) -> None:
    """issue 10.7: ``x'; touch /tmp/p #`` ran under ``set -a; . ./.env``."""
    assert cli_run("set", "team", "--name=SS_P", "--value=x'; touch SS_CANARY_FILE #").returncode == 0
    done = cli_run("export", "--format", "dotenv")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "exported.env"
    path.write_bytes(done.stdout)
    for shell in ("dash", "bash"):
        if shutil.which(shell):
            assert read_with_shell(shell, path, ["SS_P"]) == {"SS_P": "x'; touch SS_CANARY_FILE #"}
    assert not (tmp_path / CANARY).exists()


def test_export_refuses_through_the_console_script(cli_run) -> None:
    assert cli_run("set", "team", "--name=SS_OK", "--value=fine").returncode == 0
    assert cli_run("set", "team", "--name=SS_BAD", "--value=fake'$value").returncode == 0
    done = cli_run("export", "--format", "dotenv")
    err = done.stderr.decode()
    assert done.returncode == 2
    assert done.stdout == b""  # nothing half-written
    assert err.splitlines()[0] == (
        "secretstore: error: secret SS_BAD cannot be written as dotenv: sh and python-dotenv would "
        "read its value differently (docs/exec.md, 'dotenv quoting')")
    assert err.splitlines()[1].startswith("secretstore: hint: use --format json")
    assert "fake" not in err
    assert cli_run("export", "--format", "shell").returncode == 0
    assert cli_run("export", "--format", "json").returncode == 0


# --- the property: any valid value is read back identically by both, or refused --------------

_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_fragments = st.sampled_from(
    ["'", '"', "\\", "\\\\", "\\'", '\\"', "$", "${X}", "$(id)", "`id`", "#", " #", "\n", "\r", "\r\n",
     " ", "\t", "=", "export ", "\u2028", "\u2029", "\x85", "'\\''", "\\\n", "!"]
)
_small = st.lists(st.one_of(_fragments, st.text(_chars, min_size=1, max_size=8)), min_size=1,
                  max_size=12).map("".join)


def _fit(value: str) -> str:
    """``value`` cut to at most MAX_VALUE_BYTES of UTF-8, on a character boundary."""
    encoded = value.encode("utf-8")[:MAX_VALUE_BYTES]
    return encoded.decode("utf-8", "ignore") or "x"


# 1 byte to 64 KiB: a small value, or one repeated up to the limit.
valid_values = st.one_of(
    _small,
    st.tuples(_small, st.integers(1, MAX_VALUE_BYTES)).map(lambda pair: _fit(pair[0] * pair[1])),
).map(_fit)


def refused(value: str) -> bool:
    single_ok = "'" not in value and "\\\\" not in value and not value.endswith("\\")
    double_ok = "$" not in value and "`" not in value
    return "\r" in value or not (single_ok or double_ok)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(valid_values, min_size=1, max_size=4))
def test_any_valid_value_reads_back_identically_or_is_refused(tmp_path: Path, values: list[str]) -> None:
    secrets = {f"SS_V{i}": value for i, value in enumerate(values)}
    if any(refused(value) for value in values):
        with pytest.raises(UsageError):
            render(secrets, "dotenv")
        return
    path = tmp_path / "prop.env"
    path.write_text(render(secrets, "dotenv"), encoding="utf-8")
    assert read_with_python_dotenv(path) == secrets
    for shell in ("dash", "bash"):
        if shutil.which(shell):
            assert read_with_shell(shell, path, sorted(secrets)) == secrets


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(valid_values.filter(lambda value: not refused(value)), min_size=1, max_size=4))
def test_every_value_dotenv_accepts_reads_back_identically(tmp_path: Path, values: list[str]) -> None:
    """The same property over accepted values only, so that refusals cannot crowd it out."""
    secrets = {f"SS_V{i}": value for i, value in enumerate(values)}
    path = tmp_path / "accepted.env"
    path.write_text(render(secrets, "dotenv"), encoding="utf-8")
    assert read_with_python_dotenv(path) == secrets
    for shell in ("dash", "bash"):
        if shutil.which(shell):
            assert read_with_shell(shell, path, sorted(secrets)) == secrets
