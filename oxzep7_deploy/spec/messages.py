"""JSON Schema validation with every error rewritten as one plain sentence at its path."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from jsonschema import ValidationError  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

from oxzep7_deploy.spec.problems import Issue, Path, describe
from oxzep7_deploy.spec.schema import Schema, resolve, schema, validator

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def schema_issues(data: object) -> list[Issue]:
    """Everything the JSON Schema finds wrong with `data`, in plain words."""
    issues: list[Issue] = []
    for error in validator().iter_errors(data):
        issues.extend(explain(error))
    return issues


def explain(error: ValidationError) -> list[Issue]:
    """One validation error as issues (several for several unknown keys, none for noise)."""
    path: Path = tuple(error.absolute_path)
    keyword = error.validator
    sub = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "oneOf" and "method" in sub.get("properties", {}):
        return _explain_method_branch(error)
    if keyword == "additionalProperties":
        return _unknown_keys(error.instance, sub, path)
    if keyword == "required":
        return _missing_keys(error.instance, error.validator_value, sub, path)
    if "propertyNames" in error.relative_schema_path:
        key = str(error.instance)
        reason = _custom(sub, "pattern") or "is not allowed here"
        return [Issue((*path, key), f"key '{key}' {reason}", at_key=True)]
    if keyword in ("anyOf", "oneOf") and not _custom(sub, keyword) and error.context:
        return explain(best_match(error.context))
    message = _custom(sub, keyword) or _plain(error, path)
    if keyword == "anyOf" and _quoted_number(error.instance, sub):
        message += f" (write {error.instance.strip()} without quotes)"
    return [Issue(path, message)]


def _quoted_number(value: object, sub: Schema) -> bool:
    """`dead_man: "300"`: digits in quotes where the schema also takes a whole number."""
    takes_integer = any(branch.get("type") == "integer" for branch in sub.get("anyOf", []))
    return takes_integer and isinstance(value, str) and value.strip().isdigit()


def _custom(sub: Schema, keyword: str) -> str:
    """The schema's own message for a failure of `keyword`, if it has one."""
    if keyword == "pattern" and isinstance(sub.get("patternErrorMessage"), str):
        return str(sub["patternErrorMessage"])
    message = sub.get("errorMessage")
    if isinstance(message, Mapping):
        message = message.get(keyword)
    return message if isinstance(message, str) else ""


def _explain_method_branch(error: ValidationError) -> list[Issue]:
    """Errors of the install branch that `method` chose; none if `method` itself is wrong.

    The `method` enum beside the `oneOf` already reports a wrong or missing method in one line,
    so the four branches' complaints are never shown together; a key that no method takes is
    a typo whatever the method, and is reported with it (every error at once).
    """
    method = error.instance.get("method") if isinstance(error.instance, Mapping) else None
    for index, branch in enumerate(error.schema["oneOf"]):
        if _const_method(branch) == method:
            chosen = [sub for sub in error.context if sub.relative_schema_path[0] == index]
            return [issue for sub in chosen for issue in explain(sub)]
    if not isinstance(error.instance, Mapping):
        return []
    known = sorted(_install_keys())
    return [Issue((*tuple(error.absolute_path), key),
                  f"unknown key '{key}'{_unknown_key_hint(str(key), known, {})}", at_key=True)
            for key in error.instance if key not in known]


def _const_method(branch: Schema) -> object:
    return resolve(branch).get("properties", {}).get("method", {}).get("const")


def _unknown_keys(instance: object, sub: Schema, path: Path) -> list[Issue]:
    if not isinstance(instance, Mapping):
        return []
    allowed = list(sub.get("properties", {}))
    return [
        Issue((*path, key), f"unknown key '{key}'{_unknown_key_hint(str(key), allowed, sub)}",
              at_key=True)
        for key in instance
        if key not in allowed
    ]


def _unknown_key_hint(key: str, allowed: list[str], sub: Schema) -> str:
    """Why a key is unknown: a typo, another method's key, or a key of another section."""
    method = _const_method(sub)
    if method is not None and key in _install_keys():
        takes = ", ".join(k for k in allowed if k != "method")
        return f" (method {method} does not use it; it takes {takes})"
    by_lower = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{by_lower[close[0]]}'?)"
    homes = _key_homes().get(key, ())
    if 0 < len(homes) <= 2:
        return f" (it belongs {' or '.join(homes)})"
    return f" (allowed here: {', '.join(allowed)})" if allowed else ""


@lru_cache(maxsize=1)
def _install_keys() -> frozenset[str]:
    branches = resolve(schema()["$defs"]["install"])["oneOf"]
    return frozenset(key for branch in branches for key in resolve(branch)["properties"])


@lru_cache(maxsize=1)
def _key_homes() -> dict[str, tuple[str, ...]]:
    """For each key of the schema, where it may be written: `under interpreter`, `at the top level`."""
    homes: dict[str, list[str]] = {}

    def walk(fragment: Schema, where: str, depth: int) -> None:
        fragment = resolve(fragment)
        if depth > 12:
            return
        for key, child in fragment.get("properties", {}).items():
            home = f"under {where}" if where else "at the top level"
            if home not in homes.setdefault(key, []):
                homes[key].append(home)
            walk(child, f"{where}.{key}" if where else key, depth + 1)
        for branch in fragment.get("oneOf", []):
            walk(branch, where, depth + 1)
        if isinstance(fragment.get("items"), Mapping):
            walk(fragment["items"], f"{where}[]", depth + 1)

    walk(schema(), "", 0)
    return {key: tuple(places) for key, places in homes.items()}


def _missing_keys(instance: object, required: Iterable[str], sub: Schema, path: Path) -> list[Issue]:
    if not isinstance(instance, Mapping):
        return []
    override = _custom(sub, "required")
    issues = []
    for key in required:
        if key in instance:
            continue
        described = resolve(sub.get("properties", {}).get(key, {})).get("description")
        message = override or f"missing required key '{key}'" + (
            f" ({described})" if isinstance(described, str) else ""
        )
        issues.append(Issue(path, message))
    return issues


def _plain(error: ValidationError, path: Path) -> str:
    """The message for a keyword without a message of its own in the schema."""
    explain_keyword = _PLAIN.get(str(error.validator))
    if explain_keyword is None:
        return str(error.message)
    return explain_keyword(error, path)


def _type_message(error: ValidationError, _path: Path) -> str:
    expected, value = error.validator_value, error.instance
    if expected == "string" and isinstance(value, (bool, int, float)):
        examples = error.schema.get("examples")
        text = f'must be a string in quotes, e.g. "{examples[0]}"' if examples else (
            "must be a string: put it in quotes"
        )
        if isinstance(value, bool):
            return text + " (YAML reads yes, no, on and off as true and false)"
        return text + f" (YAML reads {value!r} as a number)"
    words = _TYPE_WORDS.get(str(expected), str(expected))
    if value is None:
        return f"must be {words}, but it is empty"
    return f"must be {words}, not {describe(value)}"


def _enum_message(error: ValidationError, path: Path) -> str:
    options = [str(option) for option in error.validator_value]
    name = f"{path[-1]} " if path and isinstance(path[-1], str) else ""
    message = f"{name}must be one of {', '.join(options)}"
    value = error.instance
    if isinstance(value, str):
        close = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
        message += f" (got '{value}'" + (f"; did you mean '{close[0]}'?)" if close else ")")
    else:
        message += f" (got {describe(value)})"
    return message


def _length(noun: str) -> Callable[[ValidationError, Path], str]:
    def message(error: ValidationError, _path: Path) -> str:
        limit = error.validator_value
        return "must not be empty" if limit == 1 else f"must have at least {limit} {noun}"

    return message


_PLAIN: dict[str, Callable[[ValidationError, Path], str]] = {
    "type": _type_message,
    "enum": _enum_message,
    "const": lambda e, _p: f"must be {json.dumps(e.validator_value)}",
    "minimum": lambda e, _p: f"must be at least {e.validator_value}",
    "maximum": lambda e, _p: f"must be at most {e.validator_value}",
    "pattern": lambda e, _p: f"must match the pattern {e.validator_value}",
    "minLength": _length("characters"),
    "minItems": _length("items"),
    "not": lambda _e, _p: "is not allowed here",
    "uniqueItems": lambda _e, _p: "must not list the same item twice",
}
