"""The upgrade spec: load YAML with line numbers, validate it, build the frozen model."""

from oxzep7_deploy.spec.placeholders import substitute
from oxzep7_deploy.spec.problems import Problem
from oxzep7_deploy.spec.schema import schema_text
from oxzep7_deploy.spec.validate import (
    check_bytes,
    load_spec,
    parse_spec,
    validate_document,
    validate_file,
)

__all__ = [
    "Problem",
    "check_bytes",
    "load_spec",
    "parse_spec",
    "schema_text",
    "substitute",
    "validate_document",
    "validate_file",
]
