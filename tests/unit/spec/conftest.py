"""Helpers for spec tests: write a spec to a file and read back its problems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from oxzep7_deploy.spec import validate_document
from oxzep7_deploy.spec.problems import Problem

MINIMAL = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: billing-py313
targets: billing
interpreter:
  version: "3.13.5"
  install:
    method: source
    url: https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tar.xz
    sha256: "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
application:
  name: billing
  root: /srv/billing
"""


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to a spec file and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "spec.yaml"
        path.write_text(text, "utf-8")
        return path

    return write


@pytest.fixture
def problems_of(write_spec: Callable[[str], Path]) -> Callable[[str], list[Problem]]:
    """The problems `validate` finds in YAML text."""

    def problems(text: str) -> list[Problem]:
        return validate_document(write_spec(text))

    return problems
