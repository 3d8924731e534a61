#!/usr/bin/python
"""Ansible module: run one subcommand of the oxzep7 host agent and return its JSON report."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: oxzep7_agent
short_description: Run the oxzep7 host agent (/var/lib/oxzep7/bin/oxzep7-host)
description:
  - Runs one agent subcommand as root and returns its JSON report as C(report).
  - The task fails with the agent's error message when the agent reports C(ok=false).
options:
  app: {description: The application name, type: str, required: true}
  command: {description: The agent subcommand, type: str, required: true}
  args: {description: Further arguments, type: list, elements: str, default: []}
  input: {description: A document given to the agent as JSON on stdin, type: raw}
  env_b64:
    description:
      - Environment for commands the agent runs (application.env) as base64 of a JSON object;
        never logged. One opaque string on purpose, because Ansible masks every occurrence of
        each no_log value in results, and a short env value ("1") would mangle the report.
    type: str
    default: ""
  state_dir: {description: The state directory, type: str, default: /var/lib/oxzep7}
  agent: {description: Path of the installed agent, type: str}
  agent_b64:
    description:
      - The agent's zipapp, base64 (the playbooks pass the one the controller built for this run,
        C(oxzep7_host_pyz), see oxzep7_deploy/agent_build.py). Installed at C(agent), root-only,
        when the file there differs; so every call runs the current agent.
    type: str
"""

RETURN = r"""
report: {description: The agent's JSON report, type: dict, returned: always}
code: {description: The agent's error code when it failed, type: str, returned: failure}
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type="str", required=True),
            command=dict(type="str", required=True),
            args=dict(type="list", elements="str", default=[]),
            input=dict(type="raw"),
            env_b64=dict(type="str", default="", no_log=True),
            state_dir=dict(type="str", default="/var/lib/oxzep7"),
            agent=dict(type="str"),
            agent_b64=dict(type="str", no_log=True),
        ),
        supports_check_mode=False,
    )
    p: dict[str, Any] = module.params
    agent = p["agent"] or os.path.join(p["state_dir"], "bin", "oxzep7-host")
    installed = install_agent(agent, base64.b64decode(p["agent_b64"])) if p["agent_b64"] else False
    argv = [sys.executable, agent, "--state-dir", p["state_dir"], p["command"], "--app", p["app"]]
    argv += [str(a) for a in p["args"]]
    env = dict(os.environ)
    if p["env_b64"]:
        extra = json.loads(base64.b64decode(p["env_b64"]).decode("utf-8"))
        env.update({str(k): str(v) for k, v in extra.items()})
    stdin = None if p["input"] is None else json.dumps(p["input"])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, universal_newlines=True)
    out, err = proc.communicate(stdin)
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = (err or out).strip()[-2000:]
        module.fail_json(msg=f"the oxzep7 agent answered no JSON (exit {proc.returncode}): {detail}",
                         rc=proc.returncode)
    if not report.get("ok"):
        module.fail_json(msg=report.get("error") or "the oxzep7 agent failed",
                         code=report.get("code"), report=report, rc=proc.returncode)
    module.exit_json(changed=bool(report.get("changed")) or installed, report=report,
                     agent_installed=installed)


def install_agent(path: str, data: bytes) -> bool:
    """Write the agent (0700, in 0700 directories) unless the same bytes are there already."""
    try:
        with open(path, "rb") as handle:
            if hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest():
                return False
    except OSError:
        pass
    for directory in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path)):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o700)
    os.rename(tmp, path)
    return True


if __name__ == "__main__":
    main()
