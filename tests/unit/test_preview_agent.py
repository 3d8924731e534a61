"""The host agent's preview: how the transient unit is made from the app's own unit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# the agent's package itself (what the shipped agent is built from)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "playbooks" / "agent"))
from oxzep7_host import preview as agent
from oxzep7_host.base import AgentError

SHOW = """\
User=sample
Group=sample
WorkingDirectory=/srv/sample/current
Environment=LANG=C.UTF-8 APP_MODE=prod
EnvironmentFiles=/etc/sample.env (ignore_errors=no)
EnvironmentFiles=/etc/sample.local (ignore_errors=yes)
ExecStart={ path=/srv/sample/current/venv/bin/python ; argv[]=/srv/sample/current/venv/bin/python \
/srv/sample/app/app.py --port 8000 --root /srv/sample ; ignore_errors=no ; start_time=[n/a] ; \
stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
"""


class FakeCtx:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def run(self, argv: Any, env: Any, **options: Any) -> tuple[int, str]:
        self.calls.append(argv)
        return 0, SHOW


STATE = {"root": "/srv/sample", "releases": {"r2": {"path": "/srv/sample/releases/r2"}}}


def test_the_default_preview_is_the_unit_s_execstart_pointed_at_the_new_release() -> None:
    props, argv = agent.service_command(FakeCtx(), STATE, "r2", {"service": "sample.service"},
                                        {"port": "18000"}, {})
    assert argv == ["/srv/sample/releases/r2/venv/bin/python", "/srv/sample/app/app.py",
                    "--port", "8000", "--root", "/srv/sample"]
    assert props == ["User=sample", "Group=sample", "WorkingDirectory=/srv/sample/releases/r2",
                     "Environment=LANG=C.UTF-8 APP_MODE=prod",
                     "EnvironmentFile=/etc/sample.env", "EnvironmentFile=-/etc/sample.local"]


def test_preview_command_takes_the_placeholders_with_port_the_preview_s() -> None:
    settings = {"service": "sample.service", "command": "{venv}/bin/gunicorn -b 127.0.0.1:{port} app"}
    props, argv = agent.service_command(FakeCtx(), STATE, "r2", settings,
                                        {"venv": "/srv/sample/releases/r2/venv", "port": "18000"},
                                        {})
    assert argv == ["/bin/sh", "-c", "exec /srv/sample/releases/r2/venv/bin/gunicorn "
                    "-b 127.0.0.1:18000 app"]
    assert "User=sample" in props  # the service's own identity still


def test_a_unit_without_execstart_asks_for_preview_command() -> None:
    class Empty(FakeCtx):
        def run(self, argv: Any, env: Any, **options: Any) -> tuple[int, str]:
            return 0, "User=\nExecStart=\n"

    try:
        agent.service_command(Empty(), STATE, "r2", {"service": "x.service"}, {}, {})
    except AgentError as exc:
        assert exc.code == "preview-no-command" and "set preview.command" in exc.message
    else:
        raise AssertionError("no error")
