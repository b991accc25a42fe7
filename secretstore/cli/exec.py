"""``secretstore exec``: the documented interface (options, help, usage errors).

Usually a command line never reaches this module: ``secretstore.main`` runs
``exec`` through the typer-free parser in ``secretstore.fastexec``, which
accepts exactly the options declared here (a test keeps the two in step) and
falls back to this command for ``--help`` and anything it does not
understand. Both end in ``fastexec.run_exec``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from secretstore.cli import app
from secretstore.cli.common import StoreOpt
from secretstore.fastexec import ExecOptions, run_exec

ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        metavar="ID",
        help="Project whose secrets to merge (default: $SECRETSTORE_PROJECT, then .secretstore.toml).",
    ),
]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        metavar="ID",
        help="Cluster whose secrets to merge (default: $SECRETSTORE_CLUSTER, then .secretstore.toml).",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Fail when a scope cannot be read with your identity instead of skipping it with a warning.",
    ),
]


def exec_command(
    ctx: typer.Context,
    command: Annotated[
        list[str],
        typer.Argument(metavar="CMD", help="The program to run and its arguments (after --).", show_default=False),
    ],
    project: ProjectOpt = None,
    cluster: ClusterOpt = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            metavar="VAR=VALUE",
            help=(
                "Set VAR for this run (repeatable). VALUE 'secret:NAME' is replaced by the merged "
                "secret NAME (Gradient's reference syntax). Wins over a secret named VAR."
            ),
        ),
    ] = None,
    refs_only: Annotated[
        bool,
        typer.Option(
            "--refs-only",
            help="Inject only secrets referenced as secret:NAME (by --env or inherited variables).",
        ),
    ] = False,
    no_override: Annotated[
        bool,
        typer.Option(
            "--no-override",
            help="Let inherited environment variables win over secrets of the same name.",
        ),
    ] = False,
    allow_var: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-var",
            metavar="NAME",
            help=(
                "Inject the stored variable NAME although it changes which code runs "
                "(PATH, LD_PRELOAD, PYTHONPATH...: held back by default; see docs/exec.md). "
                "Repeatable; also allow_vars in .secretstore.toml."
            ),
        ),
    ] = None,
    strict: StrictOpt = False,
    mask: Annotated[
        bool,
        typer.Option(
            "--mask",
            help=(
                "Run CMD as a child and replace secret values in its output with a marker "
                "(also SECRETSTORE_MASK=1)."
            ),
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print which variables would be set, from which scope, overriding what; no values.",
        ),
    ] = False,
    store: StoreOpt = None,
) -> int:
    """Run CMD with the merged secrets in its environment.

    Precedence: project > cluster > team; the merged secrets override inherited
    variables of the same name (--no-override to keep the inherited ones), and
    --env VAR=VALUE wins over both. Without --mask, secretstore replaces itself
    with CMD (exit status, signals and terminal are CMD's own); 127 when CMD is
    not found, 126 when it cannot be executed.

    \b
      secretstore exec -- python train.py
      secretstore exec --project prj42 --cluster gpu-a -- python train.py
      secretstore exec --env WANDB_API_KEY=secret:wandb_key --refs-only -- python train.py
      secretstore exec --dry-run --project prj42 -- true
    """
    root = ctx.find_root().obj or {}
    options = ExecOptions(
        command,
        project=project,
        cluster=cluster,
        env=env or [],
        store=store or root.get("store"),
        refs_only=refs_only,
        no_override=no_override,
        strict=strict,
        mask=mask,
        dry_run=dry_run,
        allow_vars=allow_var or [],
    )
    code = run_exec(options)
    if code:
        raise typer.Exit(code)
    return 0


app.command(
    "exec",
    context_settings={"allow_interspersed_args": False},
)(exec_command)
