"""Where the tool's own files are: the playbooks and the JSON Schema, in a checkout or a wheel."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def playbooks_dir() -> Path:
    """The root of the collection oxzep7.deploy (galaxy.yml; its playbooks in playbooks/):
    packaged with the wheel, or the checkout's top-level `playbooks/`."""
    for candidate in (_PACKAGE / "data" / "playbooks", _PACKAGE.parent / "playbooks"):
        if (candidate / "galaxy.yml").is_file() and any(candidate.glob("playbooks/*.yml")):
            return candidate
    raise FileNotFoundError("the playbooks are missing from this installation of oxzep7-deploy")


def cache_dir() -> Path:
    """The controller's artifact cache: archives, built interpreter trees, the hosts' zipapps."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oxzep7"
    return Path(os.environ.get("OXZEP7_CACHE", default))
