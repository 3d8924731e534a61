"""Requires-Python judged against a target Python as pip judges it (with `packaging`, a dependency)."""

from __future__ import annotations

import pytest

from oxzep7_deploy.audit.requires_python import InvalidSpecifier, python_satisfies


@pytest.mark.parametrize(("spec", "python", "allowed"), [
    ("", "3.13.5", True),
    (">=3.8", "3.13.5", True),
    (">=3.8,<3.12", "3.13.5", False),
    (">=3.6, <3.12", "3.11.9", True),
    ("<3.13", "3.13.0", False),
    ("<3.13", "3.13.0rc1", False),  # pip judges X.Y.Z: a release candidate counts as 3.13.0
    ("<=3.13", "3.13.0", True),
    ("<=3.13", "3.13.5", False),
    ("==3.*", "3.13.5", True),
    ("==2.7.*", "3.13.5", False),
    (">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*", "3.13.5", True),
    ("!=3.13.*", "3.13.5", False),
    ("~=3.8", "3.13.5", True),
    ("~=3.8.0", "3.13.5", False),
    ("~=3.13.1", "3.13.5", True),
    (">3.13", "3.13.0", False),
    (">3.13", "3.13.1", True),
    ("==3.13", "3.13.0", True),
    ("==3.13.5+local", "3.13.5", False),
    (">=3.14.0b1", "3.14.0", True),
    (">=3.14.0b1", "3.13.9", False),
    ("===3.13.5", "3.13.5", True),
    (" >= 3.9 ,", "3.13.5", True),
    (">=3.13.0rc1", "3.13.0", True),  # a final release sorts after its candidates
    ("<3.13.0rc1", "3.13.0", False),
    ("<3.13.0.post1", "3.13.0", True),
    (">3.13.0.dev0", "3.13.0", True),
    (">3.13.0.post1", "3.13.1", True),
])
def test_requires_python(spec: str, python: str, allowed: bool) -> None:
    assert python_satisfies(spec, python) is allowed


@pytest.mark.parametrize("spec", [">=3.6.*", "python>=3", ">=", "=>3.8", "~=3", "<3.8+local",
                                  "==3.8.*.1", ">=3.8;"])
def test_what_is_not_a_specifier_is_refused(spec: str) -> None:
    with pytest.raises(InvalidSpecifier):
        python_satisfies(spec, "3.13.5")


def test_python_version_must_start_with_a_number() -> None:
    with pytest.raises(ValueError, match="not a Python version"):
        python_satisfies(">=3.8", "python3")
