"""The programs the hosts run, as the runner ships them: zipapps built from playbooks/agent/.

`shipped(name)` is the zipapp a run would hand to the playbooks (built once per test session,
by oxzep7_deploy.agent_build, into a temporary directory); `load(name)` imports its modules from
that zipapp and returns one namespace of their public names (patch a name in `modules(name)[m]`,
where the code that calls it looks it up).
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import sys
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace

from oxzep7_deploy import agent_build


@cache
def _directory() -> Path:
    path = Path(tempfile.mkdtemp(prefix="oxzep7-agents-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def shipped(name: str) -> Path:
    """The zipapp of `oxzep7-host` or `oxzep7-audit` a run ships."""
    return agent_build.ship(name, _directory())


@cache
def modules(name: str) -> dict[str, ModuleType]:
    """The program's modules, imported from its zipapp (which goes first on sys.path)."""
    path = shipped(name)
    package = agent_build.PROGRAMS[name].package
    sys.path.insert(0, str(path))
    with zipfile.ZipFile(path) as archive:
        names = sorted(n[len(package) + 1:-3] for n in archive.namelist()
                       if n.startswith(f"{package}/") and n.endswith(".py")
                       and not n.endswith(("__init__.py", "__main__.py")))
    loaded = {n: importlib.import_module(f"{package}.{n}") for n in names}
    assert all(str(path) in (m.__file__ or "") for m in loaded.values()), "imported from elsewhere"
    return loaded


def load(name: str) -> SimpleNamespace:
    """One namespace of every name the program's modules define (read-only use)."""
    merged: dict[str, object] = {}
    shared = [importlib.import_module(f"oxzep7_deploy.{m}") for m in agent_build.PROGRAMS[name].shared]
    for module in [*shared, *modules(name).values()]:
        merged.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return SimpleNamespace(**merged)
