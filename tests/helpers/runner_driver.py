"""Driver for tests/test_runner.py: run secretstore.runner in a process of its own.

Usage: python runner_driver.py JSON, where JSON holds
  mode     "supervise" or "exec"
  argv     the program to run
  env      extra variables, added to this process's environment
  mask     values to mask (supervise)
  use_pty  null, true or false (supervise)
  credentials  optional: the names supervise keeps out of every process the
           program can read (default: RUNNER_TEST_CREDENTIAL)

Exits with what supervise returns (or dies of the child's signal), or, like
the CLI, prints "secretstore: error: MESSAGE" and exits with the error's code.

supervise is told that RUNNER_TEST_CREDENTIAL is a credential: when the
driver starts with it set, supervision continues in a fresh interpreter
without it (secretstore.runner.handover), as exec --mask does with
SECRETSTORE_KEY; tests/test_runner.py runs the supervise tests both ways.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from secretstore.errors import SecretStoreError
from secretstore.runner import exec_program, supervise

CREDENTIAL = "RUNNER_TEST_CREDENTIAL"


def main() -> int:
    config = json.loads(sys.argv[1])
    env = dict(os.environ)
    env.update(config.get("env") or {})
    try:
        if config["mode"] == "exec":
            exec_program(config["argv"], env)
        env.pop(CREDENTIAL, None)  # as exec does: the program never inherits it
        return supervise(
            config["argv"], env, config.get("mask") or [], use_pty=config.get("use_pty"),
            credentials=config.get("credentials", [CREDENTIAL]),
        )
    except SecretStoreError as exc:
        print(f"secretstore: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
