"""``secretstore exec`` (and its alias ``run``): the handler.

The use case is ``secretstore.commands.exec``; this prints the warnings and
the dry-run explanation, and hands the program to the runner.
"""

from __future__ import annotations

from secretstore.cli.common import context_of, print_json
from secretstore.commands import exec as execution
from secretstore.console import print_lines, print_table, warning_line

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from secretstore.cli.spec import Args


def exec_command(args: Args) -> int:
    context = context_of(args, allow_vars=True)
    masked = execution.mask_requested(bool(args.get("mask")))
    dry_run = bool(args.get("dry_run"))
    env_file = args.get("env_file")
    environment, decided, warnings, withheld = execution.prepare(
        context,
        env=list(args.get("env") or []),  # type: ignore[call-overload]
        env_file=env_file if isinstance(env_file, str) else None,
        refs_only=bool(args.get("refs_only")),
        no_override=bool(args.get("no_override")),
        strict=bool(args.get("strict")),
        explain=dry_run or masked,
        allow_vars=list(args.get("allow_vars") or []),  # type: ignore[call-overload]
        dry_run=dry_run,
    )
    for message in warnings:
        warning_line(message)
    if dry_run:
        from secretstore import precedence

        if args.get("as_json"):
            print_json(precedence.dry_run_json(decided, withheld))
        elif not decided and not withheld:
            print_lines(["No data found"])
        else:
            print_table(["Name", "From", "Overrides"], precedence.dry_run_rows(decided, withheld))
        return 0
    return execution.run_program(args.get("command"), environment, decided, masked)  # type: ignore[arg-type]
