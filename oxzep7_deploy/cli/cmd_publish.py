"""`publish SPEC --dest DIR`: the controller's artifacts for SPEC, laid out for artifacts.mirror."""

from __future__ import annotations

from pathlib import Path

import click

from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary
from oxzep7_deploy.cli.options import json_option
from oxzep7_deploy.cli.output import emit_json, say
from oxzep7_deploy.paths import cache_dir
from oxzep7_deploy.publish import publish
from oxzep7_deploy.spec.validate import load_spec


@click.command("publish", cls=JsonCommand)
@click.argument("spec")
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The directory served at artifacts.mirror (made if missing).")
@json_option
@error_boundary
def publish_cmd(spec: str, dest: Path, as_json: bool) -> None:
    """Copy the interpreter and wheel-set artifacts this controller has for SPEC into DEST.

    DEST/sha256/<sha256> is each artifact, named by its checksum, as hosts download it from
    artifacts.mirror; DEST/index.json lists them. Copies only what DEST lacks; contacts no host.
    Exit 0 when every artifact SPEC needs is there, 1 when the controller has not built one
    yet (nothing is copied), 2 for an invalid spec.
    """
    loaded = load_spec(spec)
    done = publish(loaded, cache_dir(), dest)
    if as_json:
        emit_json({"spec": spec, "dest": str(dest), "mirror": loaded.artifacts.mirror,
                   "artifacts": [p.to_json() for p in done]})
        return
    for item in done:
        c = item.candidate
        where = f" ({c.platform})" if c.platform else ""
        state = "copied" if item.copied else "already there"
        say(f"{c.kind}{where}: sha256/{c.sha256} {state} ({c.path.name})")
    target = loaded.artifacts.mirror or "artifacts.mirror"
    say(f"published {len(done)} artifact{'s' if len(done) != 1 else ''} to {dest}: "
        f"serve it at {target}")
