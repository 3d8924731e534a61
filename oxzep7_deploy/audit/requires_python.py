"""`Requires-Python` (PEP 440 version specifiers) judged against a target Python, with `packaging`.

Evaluated as pip evaluates it before installing: the Python's version is its `X.Y.Z` (pip
passes `sys.version_info[:3]`, so 3.13.0rc1 counts as 3.13.0), matched against every clause
of the specifier set by `packaging`, the library pip itself uses. A specifier that does not
parse raises `InvalidSpecifier`, which pip answers by ignoring it.
"""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

__all__ = ["InvalidSpecifier", "python_satisfies", "validate"]


def validate(spec: str) -> None:
    """Raise `InvalidSpecifier` unless `spec` is a PEP 440 specifier set."""
    SpecifierSet(spec)


def python_satisfies(requires_python: str, python_version: str) -> bool:
    """Whether a Python of `python_version` (e.g. "3.13.5") may install a distribution that
    declares `requires_python` (e.g. ">=3.8,<3.12"), as pip decides it."""
    m = re.match(r"^\s*(\d+(?:\.\d+)*)", python_version)
    if not m:
        raise ValueError(f"not a Python version: {python_version!r}")
    release = ".".join(m.group(1).split(".")[:3])
    specifiers = SpecifierSet(requires_python)
    return specifiers.contains(Version(release), prereleases=True)
