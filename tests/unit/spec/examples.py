"""The example specs in schemas/examples and what each invalid one must report."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "schemas" / "examples"
VALID = sorted((EXAMPLES / "valid").glob("*.yaml"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))

_EXPECT = re.compile(r"# expect: (?P<path>\S+): (?P<message>.+)$")
PROBLEM = re.compile(r"(?P<source>.+?):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<message>.+)\Z")


def expectations(path: Path) -> list[tuple[str, str]]:
    """The `# expect: PATH: message-substring` lines at the top of an invalid example."""
    found = []
    for line in path.read_text("utf-8").splitlines():
        match = _EXPECT.match(line)
        if not match:
            break
        found.append((match["path"], match["message"]))
    return found
