"""Where the tool's own files are: the playbooks and the JSON Schema, in a checkout or a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def playbooks_dir() -> Path:
    """The static playbooks: packaged with the wheel, or the checkout's top-level `playbooks/`."""
    for candidate in (_PACKAGE / "data" / "playbooks", _PACKAGE.parent / "playbooks"):
        if any(candidate.glob("*.yml")):
            return candidate
    raise FileNotFoundError("the playbooks are missing from this installation of oxzep7-deploy")
