"""The JSON Schema: one text in two places, valid itself, closed at every level, defaults valid."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from oxzep7_deploy.spec import schema_text
from oxzep7_deploy.spec.model import DEFAULT_VERIFY_MODULES
from oxzep7_deploy.spec.schema import resolve, schema, validator
from tests.unit.spec.examples import REPO

SOURCE = REPO / "schemas" / "upgrade-spec.v1.json"
PACKAGED = REPO / "oxzep7_deploy" / "data" / "upgrade-spec.v1.json"


def test_the_packaged_schema_is_the_same_bytes_as_the_source() -> None:
    assert PACKAGED.read_bytes() == SOURCE.read_bytes()
    assert schema_text() == SOURCE.read_text("utf-8")


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    document = json.loads(schema_text())
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


def _subschemas(fragment: Any, where: str = "#") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(fragment, Mapping):
        yield where, fragment
        for key, value in fragment.items():
            if key not in ("default", "examples", "const", "enum", "errorMessage"):
                yield from _subschemas(value, f"{where}/{key}")
    elif isinstance(fragment, list):
        for i, item in enumerate(fragment):
            yield from _subschemas(item, f"{where}/{i}")


def test_every_object_is_closed_so_typos_are_errors() -> None:
    for where, fragment in _subschemas(schema()):
        if "/not" in where or "/if" in where:
            continue  # conditions, not objects a spec writes
        if fragment.get("type") == "object" and "oneOf" in fragment:
            # a discriminated union: closed by each of its branches
            branches = [resolve(branch) for branch in fragment["oneOf"]]
            assert all(branch["additionalProperties"] is False for branch in branches), where
        elif fragment.get("type") == "object":
            assert "additionalProperties" in fragment, f"{where} accepts unknown keys"
            closed = fragment["additionalProperties"]
            assert closed is False or where.endswith("/env"), where


def test_every_default_is_valid_for_its_field() -> None:
    checked = 0
    for where, fragment in _subschemas(schema()):
        for key, sub in fragment.get("properties", {}).items():
            if "default" not in sub:
                continue
            errors = list(validator().evolve(schema=_standalone(sub)).iter_errors(sub["default"]))
            assert not errors, f"{where}/properties/{key}: default {sub['default']!r} is invalid"
            checked += 1
    assert checked >= 25


def _standalone(fragment: Mapping[str, Any]) -> dict[str, Any]:
    """A property's schema with the root's $defs, so its $refs resolve on their own."""
    return {**fragment, "$defs": schema()["$defs"]}


def test_verify_modules_default_is_the_model_s() -> None:
    interpreter = resolve(schema()["$defs"]["interpreter"])
    assert tuple(interpreter["properties"]["verify_modules"]["default"]) == DEFAULT_VERIFY_MODULES


@pytest.mark.parametrize(
    ("pattern_of", "value", "ok"),
    [
        ("name", "billing", True),
        ("name", "billing\n", False),
        ("name", "a" * 64, False),
    ],
)
def test_patterns_end_at_the_end_of_the_text(pattern_of: str, value: str, ok: bool) -> None:
    fragment = _standalone(schema()["properties"][pattern_of])
    assert validator().evolve(schema=fragment).is_valid(value) is ok
