"""exec leaves secretstore's credentials nowhere the program can read them (issue 9.7).

The kernel shows in /proc/<pid>/environ the environment a process was started
with. With --mask, secretstore stays as the program's parent; when
SECRETSTORE_KEY or a passphrase is in its environment it must hand the
supervision to a fresh interpreter started without them. The program here
walks its ancestors up to the test process and records each one's environ
and command line. Fake values only.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secretstore.identity import Identity, resolve_identity, unprotected_text
from secretstore.store import TEAM, Store
from tests.conftest import console_script

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs /proc")

PY = sys.executable
CREDENTIALS = ("SECRETSTORE_KEY", "SECRETSTORE_PASSPHRASE", "SECRETSTORE_NEW_PASSPHRASE")
# argv: the pid to stop at (excluded), the report file. Writes, for each ancestor
# below it, its pid, environ and command line (hex), and its children.
WALK = """
import json, os, sys
stop, report = int(sys.argv[1]), sys.argv[2]
found = []
pid = os.getppid()
while pid not in (stop, 0, 1):
    def read(name):
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            return handle.read()
    children = read(f"task/{pid}/children").split()
    found.append({"pid": pid, "environ": read("environ").hex(), "cmdline": read("cmdline").hex(),
                  "children": [int(c) for c in children]})
    pid = int(read("stat").rsplit(b")", 1)[1].split()[1])
with open(report, "w") as handle:
    json.dump({"self": os.getpid(), "reached": pid, "ancestors": found,
               "own": open("/proc/self/environ", "rb").read().hex(),
               "env": {k: v for k, v in os.environ.items()}}, handle)
"""


@pytest.fixture
def node(isolated_env: dict[str, str]) -> dict[str, str]:
    """A cluster node: the key in SECRETSTORE_KEY (no identity file), passphrases set too."""
    key = Identity.generate("node")
    NODE_KEYS.append(key)
    Store(isolated_env["store"]).set(TEAM, "TOKEN", "fake-token-value", key)
    return {
        "SECRETSTORE_KEY": unprotected_text(key),
        "SECRETSTORE_PASSPHRASE": "fake-passphrase-value",
        "SECRETSTORE_NEW_PASSPHRASE": "fake-new-passphrase-value",
    }


NODE_KEYS: list[Identity] = []


def secret_pieces(node: dict[str, str]) -> list[bytes]:
    """What must appear in no ancestor: each credential's name= and its value (each key line)."""
    pieces = [f"{name}=".encode() for name in CREDENTIALS]
    for value in node.values():
        pieces += [line.strip().encode() for line in value.splitlines() if len(line.strip()) > 8]
    return pieces


def run_walk(args: list[str], env: dict[str, str], report: Path, *, on_pty: bool) -> int:
    command = [console_script(), "exec", *args, "--", PY, "-c", WALK, str(os.getpid()), str(report)]
    full_env = dict(os.environ, **env)
    if not on_pty:
        done = subprocess.run(command, env=full_env, capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.returncode
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, env=full_env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60)


@pytest.mark.parametrize("on_pty", [False, True], ids=["pipes", "pty"])
def test_no_ancestor_of_a_masked_program_holds_a_credential(
    node: dict[str, str], tmp_path: Path, on_pty: bool
) -> None:
    report = tmp_path / "report.json"
    assert run_walk(["--mask"], node, report, on_pty=on_pty) == 0
    found = json.loads(report.read_text())
    assert found["reached"] == os.getpid()  # the walk went all the way up to this test
    assert len(found["ancestors"]) == 1  # secretstore, still supervising
    pieces = secret_pieces(node)
    for ancestor in found["ancestors"]:
        environ = bytes.fromhex(ancestor["environ"])
        cmdline = bytes.fromhex(ancestor["cmdline"])
        assert environ  # readable: the check below is not vacuous
        leaked = [piece for piece in pieces if piece in environ or piece in cmdline]
        assert leaked == [], ancestor["pid"]
        # the supervisor's only child is the program: the payload writer, if any, is gone
        assert ancestor["children"] == [found["self"]]
    own = bytes.fromhex(found["own"])
    assert not [piece for piece in pieces if piece in own]
    assert found["env"]["TOKEN"] == "fake-token-value"


def test_a_large_handover_leaves_no_writer_behind(node: dict[str, str], isolated_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    """About 360 KB of values: more than a pipe holds, so a forked child writes the rest;
    it is reaped before the program starts, and the values all arrive."""
    values = {f"BIG_{i}": f"fake-{i}-" + "x" * 60_000 for i in range(6)}
    Store(isolated_env["store"]).set_many(TEAM, values, NODE_KEYS[-1])
    report = tmp_path / "report.json"
    assert run_walk(["--mask"], node, report, on_pty=False) == 0
    found = json.loads(report.read_text())
    assert [ancestor["children"] for ancestor in found["ancestors"]] == [[found["self"]]]
    assert {name: found["env"][name] for name in values} == values
    pieces = secret_pieces(node)
    assert not [p for p in pieces if p in bytes.fromhex(found["ancestors"][0]["environ"])]


def test_without_credentials_the_supervisor_stays_in_place(isolated_env: dict[str, str],
                                                           tmp_path: Path) -> None:
    """No credential in the environment (an identity file instead): no second
    interpreter, the supervisor is the secretstore command itself, as fast as before."""
    me = resolve_identity(create=True)[0]
    Store(isolated_env["store"]).set(TEAM, "TOKEN", "fake-token-value", me)
    report = tmp_path / "report.json"
    run_walk(["--mask"], {}, report, on_pty=False)
    found = json.loads(report.read_text())
    cmdline = bytes.fromhex(found["ancestors"][0]["cmdline"]).split(b"\0")
    # python, the console script, then secretstore's own arguments: not handed over
    assert cmdline[1].endswith(b"secretstore") and cmdline[2:4] == [b"exec", b"--mask"]
    assert found["env"]["TOKEN"] == "fake-token-value"


def test_a_plain_exec_program_sees_only_what_was_passed(node: dict[str, str], tmp_path: Path) -> None:
    """Without --mask the program is the secretstore process after execve: its
    /proc/self/environ is exactly the environment it was given, without credentials."""
    report = tmp_path / "report.json"
    run_walk([], node, report, on_pty=False)
    found = json.loads(report.read_text())
    assert found["ancestors"] == []  # nothing stands between this test and the program
    own = bytes.fromhex(found["own"])
    entries = dict(entry.split(b"=", 1) for entry in own.split(b"\0") if entry)
    assert {os.fsdecode(k): os.fsdecode(v) for k, v in entries.items()} == found["env"]
    assert not [piece for piece in secret_pieces(node) if piece in own]
    assert found["env"]["TOKEN"] == "fake-token-value"
