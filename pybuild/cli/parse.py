"""``pybuild parse``: print a Dockerfile's syntax tree, its typed stages, or its build checks.

Library modules are imported inside the command so that ``pybuild --help`` stays cheap.
"""

from __future__ import annotations

import sys

import click

from pybuild.cli.buildargs import build_args_from


def _read(path: str):
    from pybuild.dockerfile import parser
    from pybuild.errors import DockerfileError

    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            text = fh.read()
    except OSError as err:
        raise DockerfileError((err.strerror or str(err)).lower(), file=path) from None
    return parser.parse(text, file=path)


def _print_json(doc, build_args, target) -> None:
    import json

    from pybuild.instructions import from_document
    from pybuild.plan.serialize import build_data
    from pybuild.plan.stages import resolve

    instructions = from_document(doc)
    stages = resolve(instructions, build_args, target, escape=doc.escape, file=doc.file)
    data = build_data(doc, instructions, stages)
    click.echo(json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False))


def _print_checks(doc) -> int:
    from pybuild.dockerfile.checks import check_config, run_checks

    config = check_config(doc)
    warnings = run_checks(doc)
    for w in warnings:
        click.echo(f"{doc.file}:{w.line}: {w.rule}: {w.message}")
    return 1 if config.error and warnings else 0


@click.command("parse")
@click.argument("file", required=False)
@click.option("-f", "--file", "file_opt", metavar="FILE",
              help="The Dockerfile (default: Dockerfile).")
@click.option("--format", "fmt", type=click.Choice(["dump", "json"]), default="dump",
              show_default=True, help="dump: the syntax tree; json: typed stages and instructions.")
@click.option("--check", is_flag=True, help="Print build-check warnings instead.")
@click.option("--build-arg", "build_args", multiple=True, metavar="NAME[=VALUE]",
              help="A build argument, for --format json scopes.")
@click.option("--target", default=None, help="The stage to build, for --format json.")
def command(file: str | None, file_opt: str | None, fmt: str, check: bool,
            build_args: tuple[str, ...], target: str | None) -> None:
    """Parse a Dockerfile and print its syntax tree, instructions or build checks."""
    from pybuild.errors import UsageError

    if file and file_opt and file != file_opt:
        raise UsageError("give the Dockerfile either as FILE or as -f FILE, not both")
    doc = _read(file_opt or file or "Dockerfile")
    if check:
        sys.exit(_print_checks(doc))
    if fmt == "json":
        _print_json(doc, build_args_from(build_args), target)
    else:
        from pybuild.dockerfile import parser
        click.echo(parser.dump(doc), nl=False)
