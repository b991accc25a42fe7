"""secretstore.runner.limits: E2BIG said clearly before anything starts, never with a value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from secretstore.errors import LimitError
from secretstore.runner.limits import MAX_ARG_STRLEN, check_environment_limits

PY = sys.executable
TIMEOUT = 20


def test_limits_reject_a_200_kib_value_without_showing_it() -> None:
    env = {"HOME": "/home/x", "BIG_SECRET": "q" * (200 * 1024)}
    with pytest.raises(LimitError) as info:
        check_environment_limits(env, ["prog"])
    message = str(info.value)
    assert message.startswith("environment variable BIG_SECRET is 204812 bytes")  # with "=" and NUL
    assert "131072" in message and "qqqq" not in message and "\n" not in message
    assert info.value.exit_code == 1


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.sysconf("SC_PAGE_SIZE") != 4096,
                    reason="MAX_ARG_STRLEN is 32 pages of 4 KiB here")
def test_limits_match_the_kernel_at_the_boundary() -> None:
    true = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
    fits = {"A": "x" * (MAX_ARG_STRLEN - 3)}  # "A=" + value + NUL == MAX_ARG_STRLEN
    check_environment_limits(fits, [true])
    assert subprocess.run([true], env=fits, timeout=TIMEOUT, check=False).returncode == 0
    too_big = {"A": "x" * (MAX_ARG_STRLEN - 2)}
    with pytest.raises(LimitError):
        check_environment_limits(too_big, [true])
    with pytest.raises(OSError) as info:  # the kernel agrees: E2BIG
        subprocess.run([true], env=too_big, timeout=TIMEOUT, check=False)
    assert info.value.errno == 7


def test_exec_program_names_the_variable_the_kernel_refused() -> None:
    """exec checks the limits only after execve fails with E2BIG, and then says which (no value)."""
    code = (
        "import sys\n"
        "from secretstore.errors import LimitError\n"
        "from secretstore.runner import exec_program\n"
        "try:\n"
        "    exec_program(['true'], {'PATH': '/usr/bin:/bin', 'BIG_SECRET': 'q' * 300000})\n"
        "except LimitError as exc:\n"
        "    print(exc, file=sys.stderr); sys.exit(exc.exit_code)\n"
    )
    result = subprocess.run([PY, "-c", code], capture_output=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(b"environment variable BIG_SECRET is 300012 bytes")
    assert b"qqqq" not in result.stderr


def test_limits_reject_a_long_argument() -> None:
    with pytest.raises(LimitError, match=r"^argument 1 is 131073 bytes"):
        check_environment_limits({}, ["prog", "a" * MAX_ARG_STRLEN])


def test_limits_reject_a_total_over_arg_max() -> None:
    arg_max = os.sysconf("SC_ARG_MAX")
    if arg_max > 64 * 1024 * 1024:
        pytest.skip("ARG_MAX too large to build a test environment")
    value = "v" * 100_000
    env = {f"VAR_{i}": value for i in range(arg_max // 100_000 + 2)}
    check_environment_limits(dict(list(env.items())[:3]), ["prog"])
    with pytest.raises(LimitError) as info:
        check_environment_limits(env, ["prog"])
    message = str(info.value)
    assert "total" in message and str(arg_max) in message and "vvvv" not in message
