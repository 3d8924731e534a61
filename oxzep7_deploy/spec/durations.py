"""Durations as the spec writes them ("30s", "5m", "1h30m" or whole seconds) and as seconds."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?\Z")


def parse_duration(value: object) -> int:
    """Seconds for `"30s"`, `"5m"`, `"1h"`, `"1h30m"` or an integer of seconds; ValueError if not one."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return int(value)
    if isinstance(value, str) and value:
        match = _DURATION.match(value)
        if match:
            hours, minutes, seconds = (int(part or 0) for part in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    raise ValueError(f"not a duration: {value!r}")


def format_duration(seconds: int) -> str:
    """The shortest spec form of `seconds`: 5400 -> "1h30m", 0 -> "0s"."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {seconds}")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
