"""`init` scaffolds a spec and an inventory; `schema` prints the JSON Schema."""

from __future__ import annotations

from pathlib import Path

import click

from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary
from oxzep7_deploy.cli.options import json_option
from oxzep7_deploy.cli.output import emit_json, say
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.spec import schema_text

_DATA = Path(__file__).resolve().parent.parent / "data"
_FILES = {"oxzep7.yaml": "init-spec.yaml", "inventory.ini": "init-inventory.ini"}


@click.command("init", cls=JsonCommand)
@click.option("--dir", "directory", default=".", type=click.Path(file_okay=False),
              help="Where to write oxzep7.yaml and inventory.ini.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@json_option
@error_boundary(read_only=True)
def init_cmd(directory: str, force: bool, as_json: bool) -> None:
    """Write a starting spec (oxzep7.yaml) and inventory (inventory.ini)."""
    target = Path(directory)
    existing = [name for name in _FILES if (target / name).exists()]
    if existing and not force:
        names = ", ".join(str(target / n) for n in existing)
        raise UsageError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}",
            hint="pass --force to overwrite, or --dir to write elsewhere",
        )
    written = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, template in _FILES.items():
            (target / name).write_text((_DATA / template).read_text())
            written.append(str(target / name))
    except OSError as exc:
        where = exc.filename or target
        raise UsageError(
            f"cannot write {where}: {exc.strerror or exc}"
            + (f" (wrote {', '.join(written)} before)" if written else ""),
            hint="choose a directory you can write to with --dir",
        ) from exc
    if as_json:
        emit_json({"written": written})
    else:
        for path in written:
            say(f"wrote {path}")
        say(f"next: edit them, then `oxzep7-deploy validate {written[0]}`")


@click.command("schema", cls=JsonCommand)
@json_option
@error_boundary(read_only=True)
def schema_cmd(as_json: bool) -> None:
    """Print the JSON Schema of the spec (it is JSON with or without --json)."""
    click.echo(schema_text().rstrip("\n"))
