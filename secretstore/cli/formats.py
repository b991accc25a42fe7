"""export / import / inject: the merged set out as dotenv, JSON, shell or k8s; files in; templates.

The formats themselves are pure functions in ``secretstore.formats``; this
module reads the store (with the same context rules as ``exec``), prints,
and writes.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from secretstore import fsio, merge, paths
from secretstore.cli import app
from secretstore.cli.common import (
    EntityArg,
    IdOpt,
    StoreOpt,
    identity_for_read,
    identity_for_write,
    open_store,
    read_text,
    scope_of,
)
from secretstore.cli.exec import ClusterOpt, ProjectOpt, StrictOpt
from secretstore.console import warning_line, write_stdout
from secretstore.errors import UsageError
from secretstore.formats import (
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    parse_import,
    render,
    render_template,
)
from secretstore.loadervars import store_warning
from secretstore.rules import check_value, is_valid_name


def merged_secrets(
    ctx: typer.Context,
    store_flag: str | None,
    project: str | None,
    cluster: str | None,
    strict: bool,
) -> dict[str, str]:
    """name -> value of the merged set (project > cluster > team); warnings on stderr."""
    context = merge.resolve_context(project, cluster)
    store = open_store(ctx, store_flag)
    store.strict = strict
    layers, warnings = merge.load_layers(
        store, context, identity_for_read, strict=strict, snapshot_dir=paths.snapshot_dir()
    )
    for message in warnings:
        sys.stderr.write(f"secretstore: warning: {message}\n")
    sys.stderr.flush()
    return merge.merged_values(merge.merge_scopes(layers))


def _format_choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise UsageError(f"unknown {what} format {value!r}: choose one of {', '.join(allowed)}")
    return value


@app.command("export")
def export_command(
    ctx: typer.Context,
    project: ProjectOpt = None,
    cluster: ClusterOpt = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", metavar="|".join(EXPORT_FORMATS), help="Output format."),
    ] = "dotenv",
    k8s_name: Annotated[
        str, typer.Option("--k8s-name", metavar="NAME", help="metadata.name of the k8s Secret.")
    ] = "secretstore",
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", metavar="NS", help="metadata.namespace of the k8s Secret."),
    ] = None,
    strict: StrictOpt = False,
    store: StoreOpt = None,
) -> None:
    """Print the merged secrets (project > cluster > team) with their values.

    dotenv is read back exactly by python-dotenv with interpolate=False (with
    interpolation on, python-dotenv expands ${...} even inside single quotes);
    shell is safe to eval; k8s is a Secret manifest.

    \b
      secretstore export --format dotenv > .env
      eval "$(secretstore export --format shell --project prj42)"
      secretstore export --format k8s --cluster gpu-a | kubectl apply -f -
    """
    _format_choice(fmt, EXPORT_FORMATS, "export")
    secrets = merged_secrets(ctx, store, project, cluster, strict)
    text = render(secrets, fmt, k8s_name=k8s_name, k8s_namespace=namespace)
    write_stdout(text.encode("utf-8"))


@app.command("import")
def import_command(
    ctx: typer.Context,
    entity: EntityArg,
    file: Annotated[str, typer.Argument(metavar="FILE", help="A .env or JSON file; '-' reads stdin.")],
    scope_id: IdOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="|".join(IMPORT_FORMATS),
            help="Input format (default: json for *.json or text starting with '{', else dotenv).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and print what would be set; write nothing.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Set every secret of a .env file or a JSON object in one scope, all or nothing.

    Every name and value is checked before anything is written, and the scope
    file is replaced in one atomic write.

    \b
      secretstore import team .env
      secretstore import project --id prj42 secrets.json
      vault-dump | secretstore import cluster --id gpu-a - --format json
    """
    scope = scope_of(entity, scope_id)
    _format_choice(fmt, IMPORT_FORMATS, "import")
    text, source = read_text(file, "file")
    values = parse_import(text, source=source, fmt=fmt)
    for position, (name, value) in enumerate(values.items(), start=1):
        if not is_valid_name(name):
            # Not echoed: in a mangled .env the "name" is often a pasted value.
            raise UsageError(
                f"{source}: entry {position} has an invalid secret name (not shown, in case it is a value)",
                hint="names are a letter, then letters, digits or '_' (^[A-Za-z][A-Za-z0-9_]*$), at most 255",
            )
        try:
            check_value(value)
        except UsageError as exc:
            raise UsageError(f"{source}: secret {name}: {exc.message}") from None
    if not values:
        typer.echo("No data found")
        return
    target = open_store(ctx, store)
    if dry_run:
        existing = {name for name, _updated in target.list(scope)}
        for name in values:
            verb = "replace" if name in existing else "set"
            typer.echo(f"Would {verb} {scope.entity} secret '{name}'")
    else:
        target.set_many(scope, values, identity_for_write(target))
        for name in values:
            typer.echo(f"Set {scope.entity} secret '{name}'")
    for name in values:
        if (held_back := store_warning(name)) is not None:
            warning_line(held_back)


@app.command("inject")
def inject_command(
    ctx: typer.Context,
    template: Annotated[
        str,
        typer.Option("--in", "-i", metavar="TEMPLATE", help="Template file ('-' for stdin)."),
    ],
    output: Annotated[
        str | None,
        typer.Option("--out", "-o", metavar="OUT", help="Write here (created 0600) instead of stdout."),
    ] = None,
    project: ProjectOpt = None,
    cluster: ClusterOpt = None,
    strict: StrictOpt = False,
    store: StoreOpt = None,
) -> None:
    """Replace {{ secret:NAME }} in a template with merged secret values.

    A reference to a missing secret is an error that lists every missing name;
    nothing is written then.

    \b
      secretstore inject -i config.yaml.tpl -o config.yaml
    """
    text, _source = read_text(template, "template")
    secrets = merged_secrets(ctx, store, project, cluster, strict)
    rendered = render_template(text, secrets).encode("utf-8")
    if output is None or output == "-":
        write_stdout(rendered)
        return
    fsio.atomic_write(os.path.abspath(output), rendered)
