"""What ``execve`` would refuse with E2BIG, said before anything starts.

Imports nothing beyond ``os``, ``sys`` and ``execute`` (already loaded with
this package); the error class is imported when one is raised.
"""

import os
import sys

from secretstore.runner.execute import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from secretstore.errors import SecretStoreError

#: Linux limit on one argument or one ``NAME=value`` string, terminating NUL
#: included (32 pages of 4 KiB; ``MAX_ARG_STRLEN`` in the kernel).
MAX_ARG_STRLEN = 131072
#: Used when ``sysconf(SC_ARG_MAX)`` is unavailable.
DEFAULT_ARG_MAX = 2097152
#: Each argument and environment string also costs one pointer in the new
#: process image.
_POINTER_SIZE = 8


def check_environment_limits(env: "Mapping[str, str]", argv: "Sequence[str]") -> None:
    """Raise :class:`LimitError` if ``execve(argv, env)`` would fail with E2BIG.

    Linux refuses any single argument or ``NAME=value`` string longer than
    :data:`MAX_ARG_STRLEN` bytes (counting its terminating NUL, as the kernel
    does), and a total size of strings plus one pointer each above ARG_MAX.
    Checking first gives a clear message instead of an E2BIG traceback. The
    messages name variables and argument positions, never values.
    """
    per_string = sys.platform.startswith("linux")
    total = 0
    for index, arg in enumerate(argv):
        size = len(os.fsencode(arg)) + 1
        if per_string and size > MAX_ARG_STRLEN:
            raise _limit_error(
                f"argument {index} is {size} bytes; Linux allows at most "
                f"{MAX_ARG_STRLEN} per argument"
            )
        total += size + _POINTER_SIZE
    for name, value in env.items():
        # NAME '=' value NUL
        size = len(os.fsencode(name)) + len(os.fsencode(value)) + 2
        if per_string and size > MAX_ARG_STRLEN:
            raise _limit_error(
                f"environment variable {printable(name)} is {size} bytes; Linux allows "
                f"at most {MAX_ARG_STRLEN} per variable"
            )
        total += size + _POINTER_SIZE
    limit = _arg_max()
    if total > limit:
        raise _limit_error(
            f"the command line and environment total {total} bytes; "
            f"the system allows at most {limit} (ARG_MAX)"
        )


def _arg_max() -> int:
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        return DEFAULT_ARG_MAX
    return value if value > 0 else DEFAULT_ARG_MAX


def _limit_error(message: str) -> "SecretStoreError":
    from secretstore.errors import LimitError

    return LimitError(message)


