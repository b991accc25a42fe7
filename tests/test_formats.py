"""Tests for secretstore.formats: export, import and template injection.

All secret values here are fake.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import dotenv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretstore import formats
from secretstore.errors import NotFoundError, SecretStoreError, StoreFormatError, UsageError
from secretstore.formats import (
    EXPORT_FORMATS,
    parse_dotenv,
    parse_import,
    parse_json,
    render,
    render_template,
    template_references,
)

# --------------------------------------------------------------------------- data

TRICKY_VALUES = {
    "MULTI": "line one\nline two\n\nline four\n",
    "CRLF": "a\r\nb\rc",
    "SQUOTE": "it's 'quoted'",
    "DQUOTE": 'say "hi" \\"there\\"',
    "MIXED_QUOTES": "'\"'\"'",
    "DOLLAR_HOME": "$HOME/fake",
    "DOLLAR_BRACE": "${X} and ${HOME:-default} and $(echo nope) and `echo nope`",
    "BACKSLASHES": "C:\\fake\\path\\ \\n \\t \\\\ \\' \\",
    "TRAILING_BACKSLASH": "ends with \\",
    "HASH": "#not a comment # still value",
    "HASH_AFTER_SPACE": "value #with hash",
    "UNICODE": "pässwörd-ключ-密码-🔑",
    "LEADING_TRAILING_WS": "  padded value \t ",
    "ONLY_SPACES": "   ",
    "EQUALS": "a=b=c==",
    "SHELL_META": "; rm -rf / && | > < * ? ~ ! %",
    "PEM": "-----BEGIN FAKE KEY-----\nMIIBfakefakefake+/=\n-----END FAKE KEY-----\n",
    "TEMPLATE_LIKE": "{{ secret:OTHER }}",
    "EXPORT_PREFIX": "export FOO=bar",
    "LINE_SEP": "a\u2028b\u2029c\x85d\x0be\x0cf",
    "CONTROL": "\x01\x1b[31mred\x7f",
}

# Any valid value: UTF-8 encodable (no lone surrogates), no NUL.
_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_fragments = st.sampled_from(
    ["'", '"', "\\", "\\'", "\\\\", "$", "${X}", "$HOME", "#", " #", "\n", "\r\n", "\r",
     " ", "\t", "`", "=", "export ", "{{ secret:A }}", "'\\''"]
)
values = st.lists(st.one_of(_fragments, st.text(_chars, min_size=1, max_size=8)), min_size=1).map(
    "".join
)
# Names for tests that go through a shell carry a prefix, so that a generated
# name cannot clobber a shell special variable (PATH, IFS, RANDOM, UID ...).
shell_names = st.from_regex(r"SS_[A-Za-z0-9_]{1,20}", fullmatch=True)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,30}", fullmatch=True)


def dotenv_values(text: str) -> dict[str, str | None]:
    return dict(dotenv.dotenv_values(stream=io.StringIO(text), interpolate=False))


# --------------------------------------------------------------------------- render


def test_export_formats_constant() -> None:
    assert EXPORT_FORMATS == ("dotenv", "json", "shell", "k8s")


def test_unknown_format_lists_valid_formats() -> None:
    with pytest.raises(UsageError) as info:
        render({"A": "fake"}, "yaml")
    message = str(info.value)
    assert info.value.exit_code == 2
    for fmt in EXPORT_FORMATS:
        assert fmt in message


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_render_empty(fmt: str) -> None:
    out = render({}, fmt)
    if fmt == "json":
        assert json.loads(out) == {}
    elif fmt == "k8s":
        assert "data: {}" in out.splitlines()
    else:
        assert out == ""


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("bad", ["1ABC", "_A", "A-B", "A B", "", "A\nB", "É", "A" * 256])
def test_render_rejects_invalid_names(fmt: str, bad: str) -> None:
    with pytest.raises(UsageError) as info:
        render({bad: "fake-value"}, fmt)
    assert "\n" not in str(info.value)
    assert "fake-value" not in str(info.value)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_render_accepts_longest_name(fmt: str) -> None:
    render({"A" * 255: "fake"}, fmt)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_render_rejects_nul_without_leaking_value(fmt: str) -> None:
    with pytest.raises(UsageError) as info:
        render({"TOKEN": "fake-secret-\x00-tail"}, fmt)
    assert "TOKEN" in str(info.value)
    assert "fake-secret" not in str(info.value)


def test_dotenv_output_shape() -> None:
    out = render({"B": "two", "A": "it's \\ x", "C": "$x \\y"}, "dotenv")
    assert out == "A=\"it's \\\\ x\"\nB='two'\nC='$x \\y'\n"


def dotenv_can_carry(value: str) -> bool:
    """The rule of formats.dotenv_quote (tests/test_dotenv_sourcing.py checks it against sh)."""
    single_ok = "'" not in value and "\\\\" not in value and not value.endswith("\\")
    double_ok = "$" not in value and "`" not in value
    return "\r" not in value and (single_ok or double_ok)


CARRIED = {name: value for name, value in TRICKY_VALUES.items() if dotenv_can_carry(value)}


def test_dotenv_round_trip_tricky_values() -> None:
    assert set(TRICKY_VALUES) - set(CARRIED) == {"CRLF"}
    out = render(CARRIED, "dotenv")
    assert dotenv_values(out) == CARRIED
    assert parse_dotenv(out) == CARRIED
    names_in_order = [line.split("=", 1)[0] for line in out.splitlines() if re.match(r"\w+=", line)]
    assert names_in_order == sorted(CARRIED)
    for name in set(TRICKY_VALUES) - set(CARRIED):
        with pytest.raises(UsageError, match=name):
            render({name: TRICKY_VALUES[name]}, "dotenv")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, values.filter(dotenv_can_carry), max_size=6))
def test_dotenv_round_trip_property(secrets: dict[str, str]) -> None:
    out = render(secrets, "dotenv")
    assert dotenv_values(out) == secrets
    assert parse_dotenv(out) == secrets


@settings(max_examples=300, deadline=None)
@given(st.text(_chars, min_size=1))
def test_dotenv_round_trip_any_text(value: str) -> None:
    if not dotenv_can_carry(value):
        with pytest.raises(UsageError):
            render({"V": value}, "dotenv")
        return
    out = render({"V": value}, "dotenv")
    assert dotenv_values(out) == {"V": value}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(names, values.filter(dotenv_can_carry), max_size=6))
def test_dotenv_round_trip_through_a_file(tmp_path: Path, secrets: dict[str, str]) -> None:
    """Read back as users do, dotenv_values(path): text mode would turn a raw \\r into \\n."""
    path = tmp_path / "exported.env"
    path.write_bytes(render(secrets, "dotenv").encode("utf-8"))
    assert dict(dotenv.dotenv_values(path, interpolate=False)) == secrets


def test_dotenv_refuses_carriage_returns() -> None:
    """No line both sh and python-dotenv (reading a file in text mode) read back with a \\r in it."""
    for name, value in {"CR": "cr\rx", "CRLF": "-----BEGIN FAKE-----\r\nAAAA\r\n"}.items():
        with pytest.raises(UsageError, match=f"secret {name} cannot be written as dotenv"):
            render({name: value}, "dotenv")


def test_dotenv_interpolation_caveat_is_real() -> None:
    # Documented in render(): with interpolate=True python-dotenv expands ${...}
    # even inside single quotes, so consumers must pass interpolate=False.
    out = render({"A": "${SS_FAKE_UNSET_VARIABLE}x"}, "dotenv")
    interpolated = dotenv.dotenv_values(stream=io.StringIO(out))
    assert interpolated["A"] != "${SS_FAKE_UNSET_VARIABLE}x"
    assert dotenv_values(out) == {"A": "${SS_FAKE_UNSET_VARIABLE}x"}
    assert "interpolate=False" in (render.__doc__ or "")


def test_json_output_shape() -> None:
    out = render({"B": "zwei", "A": "ключ"}, "json")
    assert out == '{\n  "A": "ключ",\n  "B": "zwei"\n}\n'


def test_json_round_trip_tricky_values() -> None:
    out = render(TRICKY_VALUES, "json")
    assert json.loads(out) == TRICKY_VALUES
    assert parse_json(out) == TRICKY_VALUES
    assert list(json.loads(out)) == sorted(TRICKY_VALUES)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, values, max_size=6))
def test_json_round_trip_property(secrets: dict[str, str]) -> None:
    out = render(secrets, "json")
    assert out.endswith("\n")
    assert parse_json(out) == secrets
    assert parse_import(out, source="export.txt") == secrets


# --------------------------------------------------------------------------- shell


SHELLS = [s for s in ("bash", "sh") if shutil.which(s)]


def shell_eval(shell: str, script_path: Path, names_: list[str]) -> list[str]:
    """eval the script in a real shell, print each variable NUL-terminated."""
    printed = " ".join(f'"${name}"' for name in names_)
    command = f'eval "$(cat "$1")" || exit 99; printf \'%s\\0\' {printed}'
    proc = subprocess.run(
        [shell, "-c", command, shell, str(script_path)],
        capture_output=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent-fake-home"},
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("utf-8")
    assert out.endswith("\0") or not names_
    return out.split("\0")[:-1]


def test_shell_output_shape() -> None:
    out = render({"B": "two", "A": "it's"}, "shell")
    assert out == "export A='it'\\''s'\nexport B='two'\n"


@pytest.mark.skipif(not SHELLS, reason="no bash or sh")
@pytest.mark.parametrize("shell", SHELLS)
def test_shell_round_trip_tricky_values(shell: str, tmp_path: Path) -> None:
    script = tmp_path / "secrets.sh"
    script.write_text(render(TRICKY_VALUES, "shell"), encoding="utf-8")
    got = shell_eval(shell, script, sorted(TRICKY_VALUES))
    assert dict(zip(sorted(TRICKY_VALUES), got)) == TRICKY_VALUES


@pytest.mark.skipif(not SHELLS, reason="no bash or sh")
@pytest.mark.parametrize("shell", SHELLS)
def test_shell_exports_to_child_processes(shell: str, tmp_path: Path) -> None:
    script = tmp_path / "secrets.sh"
    script.write_text(render({"SS_CHILD": "fake 'child' $value\n"}, "shell"), encoding="utf-8")
    proc = subprocess.run(
        [shell, "-c", 'eval "$(cat "$1")"; env', shell, str(script)],
        capture_output=True,
        check=True,
    )
    assert "SS_CHILD=fake 'child' $value\n" in proc.stdout.decode("utf-8")


@pytest.fixture(scope="module")
def shell_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shell")


@pytest.mark.skipif(not SHELLS, reason="no bash or sh")
@pytest.mark.parametrize("shell", SHELLS)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secrets=st.dictionaries(shell_names, values, min_size=1, max_size=5))
def test_shell_round_trip_property(shell: str, shell_dir: Path, secrets: dict[str, str]) -> None:
    script = shell_dir / f"{shell}.sh"
    script.write_text(render(secrets, "shell"), encoding="utf-8")
    got = shell_eval(shell, script, sorted(secrets))
    assert dict(zip(sorted(secrets), got)) == secrets


# --------------------------------------------------------------------------- k8s


def parse_k8s(text: str) -> dict[str, object]:
    """Parse the small YAML subset render(..., 'k8s') writes."""
    doc: dict[str, object] = {}
    section: dict[str, str] | None = None
    for line in text.splitlines():
        m = re.fullmatch(r'  "?([^":]+)"?: "([^"]*)"', line)
        if m:
            assert section is not None
            section[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r"([A-Za-z]+):(?: (.*))?", line)
        assert m, f"unexpected line {line!r}"
        key, value = m.group(1), m.group(2)
        if value is None:
            section = {}
            doc[key] = section
        elif value == "{}":
            section = None
            doc[key] = {}
        else:
            section = None
            doc[key] = value
    return doc


def test_k8s_manifest_decodes_back() -> None:
    out = render(TRICKY_VALUES, "k8s", k8s_name="my-app.secrets", k8s_namespace="prod-1")
    doc = parse_k8s(out)
    assert doc["apiVersion"] == "v1"
    assert doc["kind"] == "Secret"
    assert doc["type"] == "Opaque"
    assert doc["metadata"] == {"name": "my-app.secrets", "namespace": "prod-1"}
    data = doc["data"]
    assert isinstance(data, dict)
    assert list(data) == sorted(TRICKY_VALUES)
    decoded = {k: base64.b64decode(v, validate=True).decode("utf-8") for k, v in data.items()}
    assert decoded == TRICKY_VALUES


def test_k8s_defaults_and_quoted_scalars() -> None:
    out = render({"y": "fake", "on": "fake2"}, "k8s")
    lines = out.splitlines()
    assert lines[:4] == ["apiVersion: v1", "kind: Secret", "metadata:", '  name: "secretstore"']
    assert "namespace" not in out
    # YAML 1.1 would read bare y / on as booleans: keys are always quoted.
    assert '  "y": "ZmFrZQ=="' in lines
    assert parse_k8s(out)["metadata"] == {"name": "secretstore"}


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(names, values, max_size=5))
def test_k8s_round_trip_property(secrets: dict[str, str]) -> None:
    doc = parse_k8s(render(secrets, "k8s", k8s_namespace="default"))
    data = doc["data"]
    assert isinstance(data, dict)
    assert {k: base64.b64decode(v).decode("utf-8") for k, v in data.items()} == secrets
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", k) for k in data)


@pytest.mark.parametrize(
    "name", ["Upper", "-lead", "trail-", "under_score", "a..b", ".a", "", "a" * 254, "a b"]
)
def test_k8s_invalid_name(name: str) -> None:
    with pytest.raises(UsageError):
        render({"A": "fake"}, "k8s", k8s_name=name)


@pytest.mark.parametrize("name", ["a", "0", "a-b.c-d", "x" * 253, "1e3"])
def test_k8s_valid_names(name: str) -> None:
    assert f'  name: "{name}"' in render({"A": "fake"}, "k8s", k8s_name=name).splitlines()


@pytest.mark.parametrize("namespace", ["a.b", "Prod", "-x", "", "n" * 64])
def test_k8s_invalid_namespace(namespace: str) -> None:
    with pytest.raises(UsageError):
        render({"A": "fake"}, "k8s", k8s_namespace=namespace)


# --------------------------------------------------------------------------- parse_dotenv

REALISTIC_ENV = """\
# Application settings (fake values)
export DB_HOST=localhost
DB_PORT=5432   # inline comment
  export API_KEY="fake-\\"quoted\\"-key"
SINGLE='it\\'s $NOT_EXPANDED ${ALSO_NOT}'
DOUBLE_ESCAPES="tab\\there\\nnewline"
UNQUOTED_HASH=abc#def
EMPTY=

PEM_KEY="-----BEGIN FAKE PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASfake
AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd
-----END FAKE PRIVATE KEY-----"
SINGLE_MULTI='first
second'
DUP=first
DUP=second
"""


def test_parse_dotenv_realistic_file() -> None:
    parsed = parse_dotenv(REALISTIC_ENV, source=".env")
    assert parsed == {
        "DB_HOST": "localhost",
        "DB_PORT": "5432",
        "API_KEY": 'fake-"quoted"-key',
        "SINGLE": "it's $NOT_EXPANDED ${ALSO_NOT}",
        "DOUBLE_ESCAPES": "tab\there\nnewline",
        "UNQUOTED_HASH": "abc#def",
        "EMPTY": "",
        "PEM_KEY": (
            "-----BEGIN FAKE PRIVATE KEY-----\n"
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASfake\n"
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\n"
            "-----END FAKE PRIVATE KEY-----"
        ),
        "SINGLE_MULTI": "first\nsecond",
        "DUP": "second",  # last wins
    }
    assert parsed == dotenv_values(REALISTIC_ENV)
    assert list(parsed)[0] == "DB_HOST"


def test_parse_dotenv_bom_crlf_and_empty() -> None:
    assert parse_dotenv("") == {}
    assert parse_dotenv("\n\n# only a comment\n") == {}
    assert parse_dotenv("\ufeffA=1\r\nB='x'\r\n") == {"A": "1", "B": "x"}


def test_parse_dotenv_does_not_validate_names() -> None:
    assert parse_dotenv("lower.dotted-name=1\n'quoted key'=2\n") == {
        "lower.dotted-name": "1",
        "quoted key": "2",
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("A=1\nnot a binding\nB=2\n", 2),
        ("A=1\n\n\n   \nB=fake-value garbage=x\nthis one is bad\n", 6),
        ("=fake-value\n", 1),
        ("A=1\nB='fake-value unterminated\nC=3\n", 2),
        ('A=1\r\n\r\nB="fake-value" trailing\r\n', 3),
        ("A='fake-value' trailing\n", 1),
        ("# comment\n\n\nbad line with fake-value\n", 4),
    ],
)
def test_parse_dotenv_unparseable_line(text: str, line: int) -> None:
    with pytest.raises(StoreFormatError) as info:
        parse_dotenv(text, source="app.env")
    assert str(info.value) == f"app.env: cannot parse line {line}"
    assert "fake-value" not in str(info.value)


def test_parse_dotenv_unparseable_does_not_log(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(StoreFormatError):
        parse_dotenv("bad line\n")
    assert caplog.records == []


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("A=fake-value\nghp_FAKEleak9abcdef\nB=2\n", 2),  # shaped like a name: still not shown
        ("A=fake-value\n\n\n  sk_live_FAKEleak9abcdef\n", 4),
        ("export ghp_FAKEleak9abcdef\n", 1),
        ("# comment\r\nA=1\r\nghp_FAKEleak9abcdef # note\r\n", 3),
        ("A=1\nsk-live-FAKEleak9abcdef\n", 2),  # not a name either
        ("'ghp_FAKEleak9abcdef'\n", 1),
    ],
)
def test_parse_dotenv_bare_line_is_named_by_number_never_shown(text: str, line: int) -> None:
    """A bare token on a line is more likely a pasted value than a key: never echo it."""
    with pytest.raises(UsageError) as info:
        parse_dotenv(text, source="app.env")
    assert str(info.value) == (
        f"app.env: line {line} has no '=' (expected NAME=value; the line is not shown, in case it is a value)"
    )
    assert "FAKEleak9abcdef" not in str(info.value) and "fake-value" not in str(info.value)
    assert info.value.exit_code == 2


def test_parse_dotenv_odd_key_is_one_line_in_message() -> None:
    with pytest.raises(UsageError) as info:
        parse_dotenv("'multi\nline key'\n")
    assert "\n" not in str(info.value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(_chars, _fragments, st.sampled_from(["A", "KEY=", "B=", "export ", "\n#c"])),
        max_size=40,
    ).map("".join)
)
def test_parse_dotenv_agrees_with_python_dotenv_or_raises(text: str) -> None:
    try:
        parsed = parse_dotenv(text, source="fuzz.env")
    except SecretStoreError as exc:
        assert isinstance(exc, (StoreFormatError, UsageError))
        assert "\n" not in str(exc) and "\r" not in str(exc)
    else:
        assert parsed == dotenv_values(text)


# --------------------------------------------------------------------------- parse_json


def test_parse_json_ok() -> None:
    text = '\ufeff{"A": "fake", "b.weird": "x\\ny", "U": "ключ"}'
    assert parse_json(text) == {"A": "fake", "b.weird": "x\ny", "U": "ключ"}
    assert parse_json("{}") == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["fake-value"]', "array"),
        ('"fake-value"', "string"),
        ("42", "number"),
        ("null", "null"),
        ('{"KEY_A": ["fake-value"]}', "KEY_A"),
        ('{"KEY_B": {"inner": "fake-value"}}', "KEY_B"),
        ('{"KEY_C": 12345}', "KEY_C"),
        ('{"KEY_D": null}', "KEY_D"),
        ('{"KEY_E": true}', "KEY_E"),
        ('{"KEY_F": "fake-value", "KEY_F": "fake-value2"}', "duplicate key KEY_F"),
        ('{"A": "ok",\n "KEY_G": "fake-value\\q"}', "line 2 column"),
        ('{"A": "fake-value"', "line 1 column"),
        ('{"A": "fake-value",}', "line 1 column"),
        ('{"A": "fake-value"} trailing', "line 1 column"),
        ("", "line 1 column 1"),
        ('{"A": ' + "1" * 5000 + "}", "invalid JSON"),
        ("[" * 100000 + "]" * 100000, "invalid JSON"),
    ],
)
def test_parse_json_errors(text: str, expected: str) -> None:
    with pytest.raises(StoreFormatError) as info:
        parse_json(text, source="in.json")
    message = str(info.value)
    assert message.startswith("in.json: ")
    assert expected in message
    assert "fake-value" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"A": "x", "sk-live-FAKEleak9": 12345}',
         "in.json: value of entry 2 must be a string, got number"
         " (its key is not a valid name; not shown, in case it is a value)"),
        ('{"sk-live-FAKEleak9": "x", "sk-live-FAKEleak9": "y"}',
         "in.json: entry 2 repeats the key of an earlier entry"
         " (its key is not a valid name; not shown, in case it is a value)"),
        # a key inside a nested object is part of a value: the outer key is named instead
        ('{"KEY_N": {"ghp_FAKEleak9": 1, "ghp_FAKEleak9": 2}}',
         "in.json: value of KEY_N must be a string, got object"),
        ('[{"ghp_FAKEleak9": 1, "ghp_FAKEleak9": 2}]',
         "in.json: expected a JSON object of names to strings, got array"),
    ],
)
def test_parse_json_never_shows_a_key_that_is_not_a_name(text: str, expected: str) -> None:
    with pytest.raises(StoreFormatError) as info:
        parse_json(text, source="in.json")
    assert str(info.value) == expected
    assert "FAKEleak9" not in str(info.value)


def test_parse_json_strips_input_from_decoder_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python's pure-Python JSON scanner appends input after a colon
    # ("Invalid \\escape: 'Z'"); only the part before it may be shown.
    def fake_loads(text: str, **kwargs: object) -> object:
        raise json.JSONDecodeError("Invalid \\escape: 'fake-value'", text, 7)

    monkeypatch.setattr(json, "loads", fake_loads)  # formats imports json where it parses
    with pytest.raises(StoreFormatError) as info:
        parse_json('{"A": "\\fake-value"}', source="in.json")
    assert str(info.value) == "in.json: invalid JSON at line 1 column 8: Invalid \\escape"


# --------------------------------------------------------------------------- parse_import


def test_parse_import_detection() -> None:
    assert parse_import('{"A": "1"}', source="x.env") == {"A": "1"}
    assert parse_import('  \n {"A": "1"}', source="-") == {"A": "1"}
    assert parse_import("A=1\n", source="-") == {"A": "1"}
    assert parse_import("A=1\n", source="prod.env") == {"A": "1"}
    with pytest.raises(StoreFormatError):
        parse_import("A=1\n", source="secrets.JSON")  # suffix says JSON


def test_parse_import_explicit_format() -> None:
    assert parse_import("A=1\n", source="x.json", fmt="dotenv") == {"A": "1"}
    assert parse_import('{"A": "1"}', source="x", fmt="json") == {"A": "1"}
    with pytest.raises(UsageError) as info:
        parse_import("A=1", source="x", fmt="toml")
    assert "dotenv" in str(info.value) and "json" in str(info.value)


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("{{ secret:A_1 }}", "A_1"),
        ("{{secret:A}}", "A"),
        ("{{\tsecret:A  }}", "A"),
        ("{{ secret:A}}", "A"),
        ("{{  secret:A\t\t}}", "A"),
        ("{{ secret:" + "A" * 255 + " }}", "A" * 255),
    ],
)
def test_template_reference_forms(text: str, name: str) -> None:
    # Blanks (spaces, tabs) are optional between the braces and secret:NAME.
    assert template_references(text) == [name]
    assert render_template(f"<{text}>", {name: "fake-value"}) == "<fake-value>"


def test_template_references_unique_in_order() -> None:
    text = "{{ secret:B }} {{secret:A}} {{ secret:B }} {{ other }} {{ secret:C}}"
    assert template_references(text) == ["B", "A", "C"]
    assert template_references("nothing here") == []


def test_render_template_replaces() -> None:
    text = "url=postgres://u:{{ secret:DB_PASS }}@h/{{secret:DB}}\nagain {{ secret:DB_PASS }}\n"
    secrets = {"DB_PASS": "fake p@ss\\1 $x", "DB": "app", "UNUSED": "fake"}
    assert render_template(text, secrets) == (
        "url=postgres://u:fake p@ss\\1 $x@h/app\nagain fake p@ss\\1 $x\n"
    )


def test_render_template_values_are_not_rescanned_or_escape_processed() -> None:
    secrets = {"A": "{{ secret:B }}", "B": "fake-b", "C": "\\g<0> \\1 \\n"}
    assert render_template("{{ secret:A }}|{{ secret:C }}", secrets) == (
        "{{ secret:B }}|\\g<0> \\1 \\n"
    )


def test_render_template_leaves_other_text_alone() -> None:
    # Only `{{`, blanks, `secret`, blanks, `:` starts a reference: Jinja, Helm and Go
    # templates, and text that merely mentions a secret, pass through untouched.
    text = (
        "{{ other }} { secret:A } {{ .Values.secret }} {{ secret }} {{ secrets.A }}"
        " {{- if .Values.secret }} {{ secret_key }} {{ mysecret:A }} secret:A {{{ {{ }}"
        " {{\nsecret:A\n}} ${A} $A {% raw %} \r\n\ttabs ünïcödé \\ '\"\n"
    )
    assert render_template(text, {}) == text
    assert render_template(text, {"A": "fake"}) == text
    assert template_references(text) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("b={{ secret:db-password }}\n", "template line 1: malformed secret reference: not a valid secret name"),
        ("x\nc={{ secret: DB_PASSWORD }}\n",
         "template line 2: malformed secret reference: a blank after 'secret:' (write {{ secret:DB_PASSWORD }})"),
        ("{{ SECRET:A }}", "template line 1: malformed secret reference: 'secret' must be lowercase (write {{ secret:A }})"),
        ("{{ secret :A }}", "template line 1: malformed secret reference: a blank before the ':' (write {{ secret:A }})"),
        ("{{ Secret : fake-value }}",
         "template line 1: malformed secret reference: 'secret' must be lowercase; a blank before the ':';"
         " a blank after 'secret:'; not a valid secret name"),
        ("{{ secret: }}", "template line 1: malformed secret reference: a blank after 'secret:'; no secret name"),
        ("{{secret:}}", "template line 1: malformed secret reference: no secret name"),
        ("{{ secret:1A }}", "template line 1: malformed secret reference: not a valid secret name"),
        ("{{ secret:A B }}", "template line 1: malformed secret reference: not a valid secret name"),
        ("{{ secret:" + "A" * 256 + " }}", "template line 1: malformed secret reference: not a valid secret name"),
        ("a\n\n{{ secret:A }\n", "template line 3: malformed secret reference: no '}}' closes it on the same line"),
        ("{{ secret:A\n}}", "template line 1: malformed secret reference: no '}}' closes it on the same line"),
        ("{{ secret:A", "template line 1: malformed secret reference: no '}}' closes it on the same line"),
        ("{{ secret:ok }} {{ secret:f@ke }}\n{{ secret:A }}\n{{ secret:x-1 }} {{ secret:x-2 }}\n{{ secret: y }}",
         "template line 1: malformed secret reference: not a valid secret name (more on lines 3, 4)"),
        ("{{ secret:f@ke }} {{ secret:f@ke }}",
         "template line 1: malformed secret reference: not a valid secret name (and more on the same line)"),
    ],
)
def test_malformed_template_reference_is_an_error(text: str, message: str) -> None:
    for call in (lambda: render_template(text, {"A": "fake-value", "ok": "fake-value"}),
                 lambda: template_references(text)):
        with pytest.raises(UsageError) as info:
            call()
        assert str(info.value) == message
        assert info.value.exit_code == 2
        assert info.value.hint is not None and "{{ secret:NAME }}" in info.value.hint
        assert "fake-value" not in str(info.value) and "f@ke" not in str(info.value)
        assert "\n" not in str(info.value)


def test_template_scan_is_linear_on_a_long_unclosed_reference() -> None:
    # 2 MB of blanks and single braces after an unclosed `{{ secret:` would be
    # quadratic for a pattern that backtracks; this one scans it once.
    text = "{{ secret:A" + " }" * 1_000_000 + "\n"
    with pytest.raises(UsageError, match="no '}}' closes it"):
        template_references(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(_chars).filter(lambda s: "{{" not in s and not s.endswith("{")),
            st.sampled_from(["A", "B"]).map(lambda n: ("ref", n)),
        )
    ),
    values,
    values,
)
def test_render_template_property(parts: list[object], a: str, b: str) -> None:
    secrets = {"A": a, "B": b}
    text = "".join(p if isinstance(p, str) else "{{ secret:%s }}" % p[1] for p in parts)
    expected = "".join(p if isinstance(p, str) else secrets[p[1]] for p in parts)
    assert render_template(text, secrets) == expected


def test_render_template_missing_lists_all_once_in_order() -> None:
    text = "{{ secret:HAVE }} {{ secret:ZED }} {{secret:ALPHA}} {{ secret:ZED }} {{ secret:HAVE }}"
    with pytest.raises(NotFoundError) as info:
        render_template(text, {"HAVE": "fake-value"})
    assert str(info.value) == "template references missing secrets: ZED, ALPHA"
    assert "fake-value" not in str(info.value)


def test_module_has_no_io_or_print() -> None:
    source = Path(formats.__file__).read_text(encoding="utf-8")
    for forbidden in ("print(", "open(", "typer", "sys.stdout", "subprocess"):
        assert forbidden not in source
