"""Constants, the agent's one error type, the clock and placeholders."""

import os
import re
import signal
import time

from oxzep7_deploy.rules import PlaceholderError, fill_placeholders

AGENT_VERSION = 1
STATE_FORMAT = 1
DEFAULT_STATE_DIR = "/var/lib/oxzep7"
STATUSES = ("prepared", "live", "good", "bad", "failed")
HISTORY_MAX = 500
OUTPUT_TAIL = 4000
DESCRIPTION = (
    "oxzep7-host: the on-host half of oxzep7-deploy; owns state.json, locks, releases and the dead-man."
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_APP = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class AgentError(Exception):
    """A failure reported as {"ok": false, "code", "error", ...} with an exit status."""

    def __init__(self, code, message, exit_status=1, **extra):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.exit_status = exit_status
        self.extra = extra


def pause_at(point):
    """A test hook: with OXZEP7_AGENT_PAUSE_AT naming `point` (comma-separated names), the agent
    stops itself (SIGSTOP) there, between two of its writes, for a drill to SIGKILL it; without
    the variable it does nothing. Points: switch:lock, switch:deadman, switch:tmp-link,
    switch:link, switch:state (see switch_call.switch)."""
    wanted = os.environ.get("OXZEP7_AGENT_PAUSE_AT")
    if wanted and point in wanted.split(","):
        os.kill(os.getpid(), signal.SIGSTOP)


def now():
    return time.time()


def iso(ts=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now() if ts is None else ts))


def substitute(template, values, quote=True):
    """The controller's placeholder rules (oxzep7_deploy/rules.py), failing as an AgentError."""
    try:
        return fill_placeholders(template, values, quote)
    except PlaceholderError as exc:
        raise AgentError(
            "placeholder", f"no value for placeholder {{{exc.name}}} in {template!r}"
        ) from None
