"""Driver for tests/test_runner.py: run secretstore.runner in a process of its own.

Usage: python runner_driver.py JSON, where JSON holds
  mode     "supervise" or "exec"
  argv     the program to run
  env      extra variables, added to this process's environment
  mask     values to mask (supervise)
  use_pty  null, true or false (supervise)

Exits with what supervise returns (or dies of the child's signal), or, like
the CLI, prints "secretstore: error: MESSAGE" and exits with the error's code.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from secretstore.errors import SecretStoreError
from secretstore.runner import exec_program, supervise


def main() -> int:
    config = json.loads(sys.argv[1])
    env = dict(os.environ)
    env.update(config.get("env") or {})
    try:
        if config["mode"] == "exec":
            exec_program(config["argv"], env)
        return supervise(
            config["argv"], env, config.get("mask") or [], use_pty=config.get("use_pty")
        )
    except SecretStoreError as exc:
        print(f"secretstore: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
