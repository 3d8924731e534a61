"""Placeholders in spec commands: `{python}` and friends, `{{`/`}}` for braces, `${VAR}` left alone."""

from __future__ import annotations

from collections.abc import Mapping

from oxzep7_deploy.rules import PlaceholderError, fill_placeholders, find_placeholders

__all__ = ["PLACEHOLDERS", "PlaceholderError", "describe_allowed", "find_placeholders", "substitute"]

# What each placeholder means on a host; the names a command may use.
PLACEHOLDERS: Mapping[str, str] = {
    "python": "the new interpreter",
    "venv": "the new release's virtualenv",
    "release": "the new release's directory",
    "root": "application.root",
    "code": "application.code",
    "version": "interpreter.version",
    "port": "application.port",
}

# The substitution rules themselves are shared with the host agent: oxzep7_deploy/rules.py.
substitute = fill_placeholders


def describe_allowed() -> str:
    """`{python}, {venv}, {release}, {root}, {code}, {version}, {port}` for messages."""
    return ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
