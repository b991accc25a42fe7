"""Launch a program with secrets in its environment.

Two ways to run it:

* :func:`exec_program` replaces this process with the program (``execve``):
  nothing stays in between, so nothing can be masked.
* :func:`supervise` runs the program as a child, forwards signals to it and
  copies its output through a :class:`~secretstore.runner.mask.Masker`,
  which replaces secret values with ``[MASKED]``.

One module per job:

* ``execute``: find the program (one PATH lookup for both ways, always in the
  PATH this process inherited, never in the environment given to the
  program) and exec it;
* ``limits``: what ``execve`` would refuse with E2BIG, said first;
* ``mask``: the masker (pure: bytes in, bytes out, no OS calls);
* ``supervisor``: the supervising parent on a pty or pipes, signals, pumping;
* ``handover``: when secretstore's credentials are in its environment, the
  supervising parent continues in a fresh interpreter started without them.

This package is on the ``exec`` fast path, whose import time is measured:
importing it loads ``execute`` only (which loads nothing beyond ``os`` and
``sys``); the supervisor and the masker are imported when :func:`supervise`
is called.
"""

from secretstore.runner.execute import exec_program

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["exec_program", "supervise"]


def supervise(
    argv: "Sequence[str]",
    env: "Mapping[str, str]",
    mask_values: "Iterable[str]",
    *,
    use_pty: bool | None = None,
    credentials: "Iterable[str]" = (),
) -> int:
    """Run ``argv`` as a supervised child; see :func:`secretstore.runner.supervisor.supervise`."""
    from secretstore.runner.supervisor import supervise as run_supervised

    return run_supervised(argv, env, mask_values, use_pty=use_pty, credentials=credentials)
