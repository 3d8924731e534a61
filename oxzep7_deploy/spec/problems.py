"""What is wrong with a spec, and where: issues found by each check, problems as users read them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# A place in the document: keys and list indexes from the top, e.g. ("rollout", "stages", 1).
Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def format_path(path: Path) -> str:
    """`rollout.stages[1].hosts` for ("rollout", "stages", 1, "hosts"); `(root)` for ()."""
    if not path:
        return "(root)"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{_quote_key(part)}]"
    return text


def _one_line(text: str) -> str:
    """`text` with line breaks and control characters escaped: one problem, one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _quote_key(key: str) -> str:
    """A key in double quotes with whitespace escaped, so a path is always one word."""
    quoted = json.dumps(key, ensure_ascii=False)
    return "".join(c if c.isprintable() and not c.isspace() else f"\\u{ord(c):04x}" for c in quoted)


@dataclass(frozen=True)
class Issue:
    """One thing wrong, found by a check that knows the path but not the line.

    `at_key` points the problem at the key itself (an unknown or duplicate key) rather than at
    its value. `line`/`col` (1-based) are set only by checks that know them (YAML syntax).
    """

    path: Path
    message: str
    at_key: bool = False
    line: int | None = None
    col: int | None = None


@dataclass(frozen=True, order=True)
class Problem:
    """One error as the user reads it: `SPEC:LINE:COL: PATH: message`."""

    line: int
    col: int
    path: str
    message: str
    source: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.col}: {self.path}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The problem for `--json` output."""
        return {"line": self.line, "col": self.col, "path": self.path, "message": self.message}


@dataclass
class Positions:
    """Where each node of a YAML document starts (1-based line, column), by path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    collections: set[Path] = field(default_factory=set)

    def locate(self, path: Path, at_key: bool = False) -> tuple[int, int]:
        """The best place to point at for `path`: its key for a key or a collection, else its value.

        A path that is not in the document (a missing key) points at its nearest ancestor.
        """
        if at_key and path in self.keys:
            return self.keys[path]
        if path in self.values:
            if path in self.collections and path in self.keys:
                return self.keys[path]
            return self.values[path]
        if path:
            return self.locate(path[:-1])
        return (1, 1)

    def adopt(self, other: Positions, prefix: Path) -> None:
        """Take `other`'s positions of `prefix` and everything under it."""
        n = len(prefix)
        for mine, theirs in ((self.values, other.values), (self.keys, other.keys)):
            mine.update((path, at) for path, at in theirs.items() if path[:n] == prefix)
        self.collections.update(path for path in other.collections if path[:n] == prefix)


def to_problems(
    issues: Iterable[Issue], positions: Positions, source: str
) -> list[Problem]:
    """Place each issue in the document; sorted by line, duplicates dropped."""
    problems = set()
    for issue in issues:
        if issue.line is not None and issue.col is not None:
            line, col = issue.line, issue.col
        else:
            line, col = positions.locate(issue.path, issue.at_key)
        message = _one_line(issue.message)
        problems.add(Problem(line, col, format_path(issue.path), message, source))
    return sorted(problems)


def describe(value: object) -> str:
    """A value's JSON type in plain words: `a string`, `a list`, `true (a boolean)`…"""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
