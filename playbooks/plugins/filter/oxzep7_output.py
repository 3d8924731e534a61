"""Filter `oxzep7_report`: the JSON report of a program run on a host, found in noisy output.

What `ansible.builtin.script` returns as stdout is everything the host printed around the program:
sudo's "unable to resolve host" (the script runs with a tty, so stderr is mixed in), a ~/.bashrc
or profile script that echoes, a MOTD. The programs we run there (the oxzep7-host and oxzep7-audit zipapps)
print their report as one JSON object on one line; this filter takes the last line that holds a
JSON object, read from its end: text before the object on that line (a prompt or echo without a
newline) and lines after it are noise.

    oxzep7_state.stdout | oxzep7_report('the state read by oxzep7-host')
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

_DECODER = json.JSONDecoder()
_EXCERPT = 600


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last JSON object alone at the end of a line of `text`, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.endswith("}"):
            continue
        start = line.find("{")
        while start != -1:
            try:
                value, end = _DECODER.raw_decode(line, start)
            except ValueError:
                value, end = None, -1
            if end == len(line) and isinstance(value, dict):
                return value
            start = line.find("{", start + 1)
    return None


def oxzep7_report(output: Any, what: str = "the program on the host") -> dict[str, Any]:
    text = output if isinstance(output, str) else ""
    found = last_json_object(text)
    if found is None:
        seen = text.strip()
        excerpt = (seen[:_EXCERPT] + " ...") if len(seen) > _EXCERPT else seen
        raise AnsibleFilterError(
            f"{what} printed no JSON report"
            + (f"; its output was: {excerpt!r}" if excerpt else " (no output at all)"))
    return found


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"oxzep7_report": oxzep7_report}
