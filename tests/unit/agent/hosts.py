"""A temp "host" for the agent's unit tests: a state directory and one application root,
driven through the agent imported from the zipapp a run ships (tests/agents.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from tests import agents

AGENT_PATH = agents.shipped("oxzep7-host")
agent = agents.load("oxzep7-host")


class Host:
    """A temp "host": a state directory and one application root, driven through the agent."""

    def __init__(self, base: Path, app: str = "demo") -> None:
        self.base = base
        self.app = app
        self.state_dir = base / "var-lib-oxzep7"
        self.root = base / "srv" / app
        (self.root / "releases").mkdir(parents=True, exist_ok=True)

    # -- running the agent --
    def call(self, *argv: str, stdin: str | None = None) -> tuple[int, dict[str, Any]]:
        buf = io.StringIO()
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            with redirect_stdout(buf):
                rc = agent.main(["--state-dir", str(self.state_dir), argv[0], "--app", self.app,
                                 *argv[1:]])
        finally:
            sys.stdin = old_stdin
        return rc, json.loads(buf.getvalue())

    def ok(self, *argv: str, stdin: str | None = None) -> dict[str, Any]:
        rc, doc = self.call(*argv, stdin=stdin)
        assert rc == 0 and doc["ok"], doc
        return doc

    def process(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(AGENT_PATH), "--state-dir", str(self.state_dir),
                               argv[0], "--app", self.app, *argv[1:]],
                              capture_output=True, text=True, timeout=60)

    # -- looking at it --
    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / self.app / "state.json").read_text())

    def link(self) -> str:
        return os.readlink(self.root / "current")

    # -- making releases by hand (a venv that is only its python link: fast) --
    def make_release_dir(self, rid: str) -> Path:
        path = self.root / "releases" / rid
        (path / "venv" / "bin").mkdir(parents=True, exist_ok=True)
        python = path / "venv" / "bin" / "python"
        if not python.exists():
            python.symlink_to(sys.executable)
        (path / "venv" / "pyvenv.cfg").write_text(
            f"home = {Path(sys.executable).parent}\nversion = 3.11.7\nexecutable = {sys.executable}\n")
        return path

    def initial(self, rid: str = "initial") -> None:
        """A release made by hand, live before oxzep7 ever ran (adopted on first contact)."""
        self.make_release_dir(rid)
        os.symlink(f"releases/{rid}", self.root / "current")

    def adopt(self) -> None:
        """What any first change does: record the hand-made release as good and current."""
        paths = agent.Paths(str(self.state_dir), self.app)
        with agent.guarded(paths):
            state, _ = agent.load_state(paths, str(self.root))
            agent.save_state(paths, state)

    def register(self, rid: str, config: dict[str, Any] | None = None,
                 prefix: str | None = None) -> None:
        """A prepared release, as `prepare` would record it (without building a venv)."""
        path = self.make_release_dir(rid)
        paths = agent.Paths(str(self.state_dir), self.app)
        interp = {"executable": sys.executable, "version": "3.11.7", "prefix": prefix,
                  "managed": prefix is not None}
        req = {"release": rid, "deploy": f"dep-{rid}", "spec": {"name": "t", "digest": "x"}}
        with agent.guarded(paths):
            state, _ = agent.load_state(paths, str(self.root))
            if config is not None:
                state["config"] = config
            agent.add_release(state, req, str(path), interp, "prepared")
            agent.save_state(paths, state)

    def deploy(self, rid: str, healthy: bool = True, confirm: bool = True) -> None:
        """What the playbooks do: switch; then confirm, or put the previous release back."""
        self.register(rid)
        doc = self.ok("switch", "--release", rid, "--deploy", f"dep-{rid}")
        if not healthy:
            args = ["--only-from", rid, "--reason", "health failed"]
            if doc["from"]:
                args += ["--to", doc["from"]]
            self.ok("rollback", *args)
        elif confirm:
            self.ok("confirm", "--release", rid, "--deploy", f"dep-{rid}")


def tree_digest(top: Path) -> dict[str, tuple[str, int, str]]:
    """Everything under `top`, byte for byte: path -> (kind, mode, content hash or link target)."""
    out: dict[str, tuple[str, int, str]] = {}
    for path in [top, *sorted(top.rglob("*"))]:
        st_ = path.lstat()
        rel = str(path.relative_to(top.parent))
        if stat.S_ISLNK(st_.st_mode):
            out[rel] = ("link", 0, os.readlink(path))
        elif stat.S_ISDIR(st_.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st_.st_mode), "")
        else:
            out[rel] = ("file", stat.S_IMODE(st_.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def prepare_request(host: Host, rid: str, verify: list[str], version: str | None = None) -> str:
    return json.dumps({
        "release": rid, "root": str(host.root), "deploy": "d1",
        "version": version or ".".join(map(str, sys.version_info[:3])),
        "interpreter": {"executable": sys.executable, "prefix": None, "managed": False},
        "requirements": None, "pip_args": [], "code": None, "verify": verify,
        "spec": {"name": "t", "digest": "abc"},
        "config": {"env_keys": ["APP_TOKEN"], "health": {"checks": []}},
    })


def make_config_tree(top: Path) -> None:
    (top / "sub").mkdir(parents=True)
    (top / "app.conf").write_text("setting = 1\n")
    (top / "sub" / "secret.key").write_bytes(os.urandom(64))
    os.chmod(top / "sub" / "secret.key", 0o640)
    (top / "link").symlink_to("app.conf")


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def release_request(host: Host, rid: str, config: dict[str, Any]) -> str:
    req = json.loads(prepare_request(host, rid, []))
    req["config"] = config
    return json.dumps(req)


def deploy_prepared(host: Host, rid: str, config: dict[str, Any]) -> None:
    host.ok("prepare", stdin=release_request(host, rid, config))
    host.ok("switch", "--release", rid, "--deploy", f"d-{rid}", "--restart", "--health")
    host.ok("confirm", "--release", rid, "--deploy", f"d-{rid}")
