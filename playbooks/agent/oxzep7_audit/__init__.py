"""oxzep7-audit: the read-only host probe of `oxzep7-deploy audit`.

Its source is this package (playbooks/agent/oxzep7_audit/, standard library only, Python 3.6+
syntax); the controller builds it into a zipapp for each run (oxzep7_deploy/agent_build.py),
which Ansible's `script` module copies to a temporary path and runs as root with the host's
system python3 (3.8+). It writes nothing: no file, no bytecode (run with -B; the interpreters
it finds are asked their version with -B -E -S, which imports nothing from site-packages and
writes nothing), no systemctl call that changes state.

Reads one JSON document of options (base64, `--config-b64`):
    {"prefix": "/opt/oxzep7/python", "app_roots": ["/srv/billing"], "paths": ["/srv/other"],
     "app_venv": "/srv/billing/current/venv", "target": "/opt/oxzep7/python/3.13.5/bin/python3.13",
     "budget": 40}
and prints one JSON document on stdout:
    {"probe": 1, "os": {...}, "disk": [...], "interpreters": [...], "venvs": [...],
     "units": [...], "cron": [...], "app": {...} | null, "warnings": [...], "seconds": 1.2}

Interpreters, venvs, units and cron entries refer to interpreters by realpath; versions come
from running each interpreter once (`-c` with a timeout), never from its file name. End-of-life
and Requires-Python are judged on the controller.

Modules: base (constants, helpers), versions, interpreters, venvs, commands (which python a
command runs), units, cron, system (os, disk), packages (the application's venv), report (the
whole document), cli.
"""
