"""Build the programs the hosts run as zipapps, from their source packages, at run time.

    python -m oxzep7_deploy.agent_build [DIR]   write both zipapps into DIR (default: the cache)

Two programs run on the hosts, each the package of small modules under playbooks/agent/:
  oxzep7-host   playbooks/agent/oxzep7_host/ plus oxzep7_deploy/rules.py (the rules the
                controller shares with the hosts); installed at /var/lib/oxzep7/bin/oxzep7-host
  oxzep7-audit  playbooks/agent/oxzep7_audit/; run from Ansible's temporary copy, writes nothing
Nothing generated is committed: the runner builds each zipapp before a run (`ship`), into a
directory keyed by the sources' sha256, and hands its path to the playbooks. A build is
deterministic: the same sources give the same bytes (fixed order, timestamps and modes), so a
host reinstalls its agent only when the sources changed. The hosts run it with their python3
(3.8+: `python3 oxzep7-host.pyz ...`); it needs nothing but the standard library there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oxzep7_deploy.paths import cache_dir

HERE = Path(__file__).resolve().parent
AGENTS = HERE / "data" / "playbooks" / "agent"
RULES = HERE / "rules.py"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the oldest time a zip entry can hold: builds do not depend on mtimes
_SHEBANG = b"#!/usr/bin/env python3\n"
_MAIN = '''"""Run {package} (built by oxzep7_deploy.agent_build from playbooks/agent/{package}/)."""
import runpy

runpy.run_module("{package}", run_name="__main__", alter_sys=True)
'''
_SHARED_INIT = '"""Only the rules the controller shares with the hosts (oxzep7_deploy/rules.py)."""\n'


@dataclass(frozen=True)
class Program:
    """One program the hosts run: its package and the controller's modules it includes."""

    name: str
    package: str
    shared: tuple[str, ...] = ()  # oxzep7_deploy modules copied in as they are

    @property
    def source(self) -> Path:
        return AGENTS / self.package


PROGRAMS = {
    "oxzep7-host": Program("oxzep7-host", "oxzep7_host", shared=("rules",)),
    "oxzep7-audit": Program("oxzep7-audit", "oxzep7_audit"),
}


class BuildError(Exception):
    """A program cannot be built (the message says where and why)."""


def files(program: Program) -> list[tuple[str, bytes]]:
    """The zipapp's entries, in their order: the package's modules, the shared ones, __main__.py."""
    package = program.source
    modules = sorted(package.glob("*.py"))
    if not (package / "__main__.py").is_file():
        raise BuildError(f"{package} has no __main__.py: the zipapp runs the package "
                         f"(`python3 {program.name}.pyz` runs `python3 -m {program.package}`)")
    entries = [(f"{program.package}/{path.name}", path.read_bytes()) for path in modules]
    if program.shared:
        entries.append(("oxzep7_deploy/__init__.py", _SHARED_INIT.encode()))
        entries += [(f"oxzep7_deploy/{name}.py", (HERE / f"{name}.py").read_bytes())
                    for name in program.shared]
    entries.append(("__main__.py", _MAIN.format(package=program.package).encode()))
    return entries


def digest(program: Program) -> str:
    """The sha256 of the program's sources: names and bytes (what its zipapp is keyed by)."""
    sha = hashlib.sha256()
    for name, data in files(program):
        sha.update(f"{name}\0{len(data)}\0".encode())
        sha.update(data)
    return sha.hexdigest()


def build(program: Program) -> bytes:
    """The program's zipapp: a shebang line, then a zip of its sources, the same bytes every time."""
    buffer = io.BytesIO()
    buffer.write(_SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in files(program):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever builds it
            archive.writestr(info, data)
    return buffer.getvalue()


def ship(name: str, directory: Path) -> Path:
    """The zipapp of program `name` in `directory/<sha256 of its sources>/`, built if missing;
    next to it `<name>.pyz.b64`, its base64 (text, for a module argument: see oxzep7_agent)."""
    program = PROGRAMS[name]
    target = directory / digest(program) / f"{name}.pyz"
    if target.is_file() and _with_suffix(target, ".b64").is_file():
        return target
    data = build(program)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(_with_suffix(target, ".b64"), base64.b64encode(data) + b"\n")
    _write(target, data)
    return target


def playbook_vars(directory: Path | None = None) -> dict[str, str]:
    """The variables every run gets: where each zipapp is on the controller (the playbooks copy
    oxzep7_audit_pyz with `script`, and read the agent's base64 from oxzep7_agent_pyz + .b64)."""
    where = default_dir() if directory is None else directory
    return {playbook_var(name): str(ship(name, where)) for name in PROGRAMS}


def playbook_var(name: str) -> str:
    """The playbook variable that names program `name`'s zipapp (oxzep7-host: oxzep7_host_pyz)."""
    return f"{name.replace('-', '_')}_pyz"


def _with_suffix(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)  # a concurrent build wrote the same bytes


def default_dir() -> Path:
    """Where the runs keep their zipapps: the controller's cache (OXZEP7_CACHE)."""
    return cache_dir() / "agents"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: python -m oxzep7_deploy.agent_build [DIR]", file=sys.stderr)
        return 3
    directory = Path(args[0]) if args else default_dir()
    try:
        for name in PROGRAMS:
            print(ship(name, directory))
    except (BuildError, OSError) as exc:
        print(f"agent_build: {exc}; nothing was shipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
