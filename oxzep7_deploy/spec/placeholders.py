"""Placeholders in spec commands: `{python}` and friends, `{{`/`}}` for braces, `${VAR}` left alone."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

# What each placeholder means on a host; the names a command may use.
PLACEHOLDERS: Mapping[str, str] = {
    "python": "the new interpreter",
    "venv": "the new release's virtualenv",
    "release": "the new release's directory",
    "root": "application.root",
    "code": "application.code",
    "version": "interpreter.version",
}

# `{{` and `}}` are literal braces; `{word}` is a placeholder unless a `$` comes right before it,
# so `${HOME}` and `awk '{print $1}'` reach the shell as written.
_TOKEN = re.compile(r"\{\{|\}\}|(?<!\$)\{([A-Za-z0-9_]+)\}")


class PlaceholderError(ValueError):
    """A template names a placeholder that has no value."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no value for placeholder {{{name}}}")
        self.name = name


def find_placeholders(template: str) -> list[str]:
    """The placeholder names `template` uses, in order, repeats included."""
    return [match.group(1) for match in _TOKEN.finditer(template) if match.group(1)]


def substitute(template: str, values: Mapping[str, str], quote: bool = True) -> str:
    """Fill `template`'s placeholders from `values`, each shell-quoted unless `quote` is false.

    `{{` and `}}` become `{` and `}`; `${NAME}` and any other brace stay as written. A placeholder
    missing from `values` raises `PlaceholderError`.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        if name not in values:
            raise PlaceholderError(name)
        return shlex.quote(values[name]) if quote else values[name]

    return _TOKEN.sub(replace, template)


def describe_allowed() -> str:
    """`{python}, {venv}, {release}, {root}, {code}, {version}` for messages."""
    return ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
