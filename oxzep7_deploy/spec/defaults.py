"""Fill a valid document's omitted fields from the schema's `default` keywords.

The schema is the one place defaults are written, so `oxzep7-deploy schema`, editors and the
loader agree by construction. Defaults that depend on other fields (stages per strategy, a
package's executable) are the builder's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from oxzep7_deploy.spec.schema import Schema, resolve, schema


def with_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a valid `data` with every schema default filled in."""
    filled = _fill(copy.deepcopy(dict(data)), schema())
    assert isinstance(filled, dict)
    return filled


def _fill(instance: Any, fragment: Schema) -> Any:
    fragment = resolve(fragment)
    if isinstance(instance, dict):
        for key, sub in fragment.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                instance[key] = _fill(instance[key], sub)
        for branch in fragment.get("oneOf", []):
            if _selects(resolve(branch), instance):
                _fill(instance, branch)
    elif isinstance(instance, list) and isinstance(fragment.get("items"), Mapping):
        return [_fill(item, fragment["items"]) for item in instance]
    return instance


def _selects(branch: Schema, instance: Mapping[str, Any]) -> bool:
    """Whether a `oneOf` branch is the one `instance`'s `const` fields (e.g. method) choose."""
    consts = {
        key: sub["const"] for key, sub in branch.get("properties", {}).items() if "const" in sub
    }
    return bool(consts) and all(instance.get(key) == value for key, value in consts.items())
