"""The sample app (tests/app/) installed on fleet hosts the way a pre-existing deployment looks.

    app = install_sample_app(fleet)            # every host; or a host name, or a list of them
    app.wait_healthy("h1")["python"]           # "3.11.2"
    app.set_unhealthy("h2")                    # /healthz 503 until set_unhealthy("h2", False)
    app.fail_on_python("h1", ["3.13"])         # only a release on 3.13 is unhealthy
    app.log_tracebacks("h1", ["new"])          # tracebacks in the journal from a new release

On each host (DESIGN.md's layout, nothing of the tool's own yet: no /var/lib/oxzep7 state, no
release.json; the tool must take such a host over):

    <root>/releases/initial/venv     built by the system python3 (3.11) + requirements.lock
    <root>/current -> releases/initial
    <code>/app.py, <code>/requirements.lock, <code>/wheels/six-*.whl   (hosts have no index)
    /etc/systemd/system/<service>    runs <root>/current/venv/bin/python <code>/app.py, user `sample`
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fleet.harness import CACHE_DIR, REPO, Fleet, FleetError, HttpResponse, _locked

APP_DIR = REPO / "tests" / "app"
WHEELS_DIR = CACHE_DIR / "wheels"


def locked_wheels() -> dict[str, str]:
    """`name==version` -> sha256 of every requirement in tests/app/requirements.lock."""
    text = (APP_DIR / "requirements.lock").read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        m = re.match(r"\s*([A-Za-z0-9_.-]+==[^\s;]+).*--hash=sha256:([0-9a-f]{64})", line)
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


def sample_wheelhouse() -> list[Path]:
    """The wheels of requirements.lock on the controller, downloaded once (hash-checked by pip)."""
    with _locked("wheels"):
        WHEELS_DIR.mkdir(parents=True, exist_ok=True)
        wanted = set(locked_wheels().values())

        def present() -> list[Path]:
            return [w for w in sorted(WHEELS_DIR.glob("*.whl"))
                    if hashlib.sha256(w.read_bytes()).hexdigest() in wanted]

        found = present()
        if len(found) < len(wanted):
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                 "--only-binary=:all:", "--require-hashes", "-d", str(WHEELS_DIR),
                 "-r", str(APP_DIR / "requirements.lock")],
                capture_output=True, text=True, timeout=300)
            found = present()
            if proc.returncode != 0 or len(found) < len(wanted):
                raise FleetError(f"pip download of {APP_DIR / 'requirements.lock'} failed:\n"
                                 f"{proc.stdout}{proc.stderr}")
        return found


@dataclass(frozen=True)
class SampleApp:
    """One installation of the sample app on a fleet (same paths and port on every host)."""

    fleet: Fleet
    root: str = "/srv/sample"
    code: str = "/srv/sample/app"
    port: int = 8000
    service: str = "oxzep7-sample.service"
    user: str = "sample"
    socket_activated: bool = False  # a .socket unit holds the port across restarts

    @property
    def socket_unit(self) -> str:
        return self.service.removesuffix(".service") + ".socket"

    @property
    def requirements(self) -> str:
        return f"{self.code}/requirements.lock"

    @property
    def wheels(self) -> str:
        return f"{self.code}/wheels"

    @property
    def pip_args(self) -> tuple[str, ...]:
        """What pip needs on a host without network: the app's own wheel directory."""
        return ("--no-index", "--find-links", self.wheels, "--require-hashes")

    @property
    def health_url(self) -> str:
        """The health URL as the host itself sees it (SPEC: http checks run on the host)."""
        return f"http://127.0.0.1:{self.port}/healthz"

    def application(self, name: str = "sample") -> dict[str, Any]:
        """The spec's `application:` block for this installation."""
        return {"name": name, "root": self.root, "code": self.code,
                "requirements": "requirements.lock", "pip_args": list(self.pip_args),
                "services": [self.service]}

    def healthz(self, host: str, timeout: float = 3) -> HttpResponse:
        """GET /healthz on `host` from the controller (FleetError if nothing answers)."""
        return self.fleet.http(host, self.port, "/healthz", timeout=timeout)

    def wait_healthy(self, host: str, timeout: float = 30) -> dict[str, Any]:
        """/healthz's JSON once it answers 200."""
        body: dict[str, Any] = self.fleet.wait_http(host, self.port, "/healthz",
                                                    timeout=timeout).json()
        return body

    def current(self, host: str) -> str:
        """Where `<root>/current` points on `host` (e.g. `releases/initial`)."""
        return self.fleet.sh(host, f"readlink {shlex.quote(self.root + '/current')}").strip()

    def set_unhealthy(self, host: str, on: bool = True, note: str = "") -> None:
        """The on-demand switch: `<root>/unhealthy` present makes /healthz answer 503."""
        path = shlex.quote(f"{self.root}/unhealthy")
        if on:
            self.fleet.write_file(host, f"{self.root}/unhealthy", note + "\n")
        else:
            self.fleet.sh(host, f"rm -f {path}")

    def fail_on_python(self, host: str, versions: Sequence[str]) -> None:
        """/healthz answers 503 when the app runs on one of `versions` ("3.13" or "3.13.5")."""
        self._version_list(host, "fail-on-python", versions)

    def crash_on_python(self, host: str, versions: Sequence[str]) -> None:
        """The app exits at start (status 3) on one of `versions`: the unit fails."""
        self._version_list(host, "crash-on-python", versions)

    def log_tracebacks(self, host: str, releases: Sequence[str]) -> None:
        """The app logs a traceback on every request and a few times a second (still answering
        200) when it runs one of `releases` (`*`: every one, `new`: all but `initial`); [] stops."""
        self._version_list(host, "log-tracebacks", releases)

    def _version_list(self, host: str, name: str, versions: Sequence[str]) -> None:
        if versions:
            self.fleet.write_file(host, f"{self.code}/{name}", "".join(f"{v}\n" for v in versions))
        else:
            self.fleet.sh(host, f"rm -f {shlex.quote(f'{self.code}/{name}')}")

    def restart(self, host: str) -> None:
        self.fleet.sh(host, f"systemctl restart {shlex.quote(self.service)}")

    def install_on(self, host: str, wheels: Sequence[Path]) -> None:
        """Code, wheels, the initial 3.11 release, the unit; started (not waited for)."""
        f, q = self.fleet, shlex.quote
        venv = f"{self.root}/releases/initial/venv"
        f.sh(host, f"id {q(self.user)} >/dev/null 2>&1 || useradd -r -s /usr/sbin/nologin "
                   f"{q(self.user)}; mkdir -p {q(self.wheels)} {q(self.root + '/releases')}")
        for name in ("app.py", "requirements.lock"):
            f.copy_to(host, APP_DIR / name, f"{self.code}/{name}")
        for wheel in wheels:
            f.copy_to(host, wheel, f"{self.wheels}/{wheel.name}")
        f.sh(host, f"set -e; python3 -m venv {q(venv)};"
                   f" PIP_DISABLE_PIP_VERSION_CHECK=1 {q(venv)}/bin/pip install -q"
                   f" {' '.join(q(a) for a in self.pip_args)} -r {q(self.requirements)};"
                   f" ln -sfn releases/initial {q(self.root + '/current')}", timeout=300)
        unit = ((APP_DIR / "oxzep7-sample.service").read_text()
                .replace("@ROOT@", self.root).replace("@CODE@", self.code)
                .replace("@PORT@", str(self.port)))
        unit = re.sub(r"^(User|Group)=.*$", rf"\1={self.user}", unit, flags=re.M)
        units = [self.service]
        if self.socket_activated:
            unit = unit.replace("After=network.target",
                                f"After=network.target {self.socket_unit}\nRequires={self.socket_unit}")
            socket_unit = ((APP_DIR / "oxzep7-sample.socket").read_text()
                           .replace("@PORT@", str(self.port)))
            f.write_file(host, f"/etc/systemd/system/{self.socket_unit}", socket_unit)
            units.insert(0, self.socket_unit)
        f.write_file(host, f"/etc/systemd/system/{self.service}", unit)
        f.sh(host, "systemctl daemon-reload && "
                   + " && ".join(f"systemctl enable -q --now {q(u)}" for u in units))


def install_sample_app(fleet: Fleet, hosts: str | Sequence[str] | None = None, *,
                       root: str = "/srv/sample", code: str | None = None, port: int = 8000,
                       service: str = "oxzep7-sample.service",
                       timeout: float = 60, socket_activated: bool = False) -> SampleApp:
    """The sample app on `hosts` (default: all), running and healthy on Python 3.11;
    `socket_activated`: systemd holds its port in a .socket unit (kept across restarts)."""
    app = SampleApp(fleet, root=root, code=code or f"{root}/app", port=port, service=service,
                    socket_activated=socket_activated)
    targets = [hosts] if isinstance(hosts, str) else list(hosts or fleet.hosts)
    wheels = sample_wheelhouse()
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        list(pool.map(lambda h: app.install_on(h, wheels), targets))
    for host in targets:
        try:
            app.wait_healthy(host, timeout=timeout)
        except FleetError as exc:
            journal = fleet.run_on(host, f"journalctl -u {shlex.quote(service)} -n 20 --no-pager")
            raise FleetError(f"{exc}\n{host}'s journal:\n{journal.stdout}") from exc
    return app
