"""The packaged JSON Schema of the spec and a validator for it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any, cast

from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]
from jsonschema.validators import extend  # type: ignore[import-untyped]

SCHEMA_FILE = "upgrade-spec.v1.json"

Schema = Mapping[str, Any]


def schema_text() -> str:
    """The JSON Schema of the v1 spec, as shipped in the package."""
    return (resources.files("oxzep7_deploy") / "data" / SCHEMA_FILE).read_text("utf-8")


@lru_cache(maxsize=1)
def schema() -> Schema:
    """The JSON Schema of the v1 spec, parsed."""
    return cast(Schema, json.loads(schema_text()))


def resolve(fragment: Schema) -> Schema:
    """`fragment` with a local `$ref` followed; the fragment's own keywords win over the target's."""
    ref = fragment.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return fragment
    target = resolve(schema()["$defs"][ref.removeprefix("#/$defs/")])
    return {**target, **{k: v for k, v in fragment.items() if k != "$ref"}}


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA 262: `$` ends the text. Python's `$` also matches before a
    # final newline, which would let "billing\n" pass as a name.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(
    validator: Any, pattern: str, instance: object, _schema: Schema
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compile(pattern).search(cast(str, instance)):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = extend(Draft202012Validator, {"pattern": _pattern})


@lru_cache(maxsize=1)
def validator() -> Any:
    """A draft 2020-12 validator for the spec schema, with ECMA-262 `$` in patterns."""
    return _Validator(schema())
