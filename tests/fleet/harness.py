"""A test fleet from Python: bring it up and down, reach its hosts, break them on purpose.

    fleet = Fleet.allocate()           # a free name and /24, nothing started yet
    fleet.up(3)                        # h1..h3, inventory at fleet.inventory
    fleet.run_on("h1", "systemctl is-system-running")
    fleet.run_playbook(tmp_path, "site.yml")   # ansible-runner over real SSH
    fleet.pause("h2"); fleet.cut("h3"); fleet.fill("h1", "/srv/app", free_mb=1)
    fleet.down()                       # no container, namespace or mount left

Everything goes through `fleet.sh` or `podman`; the hosts' addresses exist only in namespaces the
fleet creates, so the controller reaches them through `ip netns exec <name>-net` (the inventory's
ProxyCommand does that for SSH).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLEET_DIR = Path(os.environ.get("OXZ_FLEET_DIR", "/var/tmp/oxzep7-fleet"))
CACHE_DIR = FLEET_DIR / "cache"
FLEET_SH = Path(__file__).resolve().with_name("fleet.sh")
REPO = Path(__file__).resolve().parents[2]
LABEL = "oxzep7-fleet"
AUTO_NETS = range(100, 250)  # nets handed out by allocate(); people pick lower ones by hand
STARTED: list[Fleet] = []  # every fleet this process brought up: checked for leftovers at the end


class FleetError(RuntimeError):
    """A fleet operation failed; the message says which and carries the command's output."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 300,
         env: Mapping[str, str] | None = None, input: str | None = None,
         ) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None, input=input)
    except subprocess.TimeoutExpired as exc:
        raise FleetError(f"timed out after {timeout:.0f} s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise FleetError(f"exit {proc.returncode}: {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
    return proc


def podman_env() -> dict[str, str]:
    """The environment for `podman` on the fleet's private configuration and storage."""
    return {**os.environ,
            "CONTAINERS_CONF": str(FLEET_DIR / "podman" / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(FLEET_DIR / "podman" / "storage.conf")}


def missing_prerequisite() -> str | None:
    """Why no fleet can run on this machine, or None. Podman may be missing: `setup` installs it."""
    if sys.platform != "linux":
        return "the test fleet needs Linux"
    if os.geteuid() != 0:
        return "the test fleet needs root (rootful podman, network namespaces)"
    for tool in ("ip", "nsenter", "flock"):
        if shutil.which(tool) is None:
            return f"the test fleet needs `{tool}` on PATH"
    if shutil.which("podman") is None and shutil.which("apt-get") is None:
        return "podman is not installed and there is no apt-get to install it"
    return None


def setup() -> None:
    """Packages, podman configuration, SSH key and host image: idempotent, ~75 s the first time."""
    _run(["bash", str(FLEET_SH), "setup"], timeout=1800)


@contextmanager
def _locked(name: str) -> Iterator[None]:
    FLEET_DIR.mkdir(parents=True, exist_ok=True)
    with open(FLEET_DIR / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def live_namespaces() -> list[str]:
    return [line.split()[0] for line in _run(["ip", "netns", "list"]).stdout.splitlines() if line]


def _claimed() -> tuple[set[str], set[int]]:
    """Fleet names and nets in use: live bridges, and homes claimed in the last 10 minutes."""
    names: set[str] = set()
    nets: set[int] = set()
    live = live_namespaces()
    for ns in live:
        if ns.endswith("-net"):
            names.add(ns[: -len("-net")])
            out = _run(["ip", "-n", ns, "-4", "-o", "addr", "show"], check=False).stdout
            nets.update(int(m) for m in re.findall(r"inet 198\.18\.(\d+)\.", out))
    for f in (FLEET_DIR / "fleets").glob("*/net"):
        try:
            fresh = time.time() - f.stat().st_mtime < 600
            if fresh or f"{f.parent.name}-net" in live:
                names.add(f.parent.name)
                nets.add(int(f.read_text()))
        except (OSError, ValueError):
            pass  # a fleet going down meanwhile
    if shutil.which("podman"):  # containers whose namespaces are gone still hold their names
        names.update(_run(["podman", "ps", "-a", "--filter", f"label={LABEL}", "--format",
                           f'{{{{index .Labels "{LABEL}"}}}}'], env=podman_env(),
                          check=False).stdout.split())
    return names, nets


@dataclass
class Fleet:
    """One fleet: hosts h1..hN named `<name>-hI`, on 198.18.<net>.0/24."""

    name: str
    net: int
    size: int = 0
    # what `up` started, so that `leftovers` can look for it after `down`
    traces: list[str] = field(default_factory=list)

    _counter = 0

    @classmethod
    def allocate(cls, prefix: str | None = None) -> Fleet:
        """A fleet with a name and net no other fleet on this machine uses (nothing started yet).

        Names are `p<pid % 1000><k>`, so parallel pytest sessions differ; the net is reserved by
        writing it to the fleet's home, under a lock all sessions share.
        """
        prefix = prefix or f"p{os.getpid() % 1000}"
        with _locked("allocate"):
            taken, used = _claimed()
            while True:
                cls._counter += 1
                name = f"{prefix}{cls._counter}"
                if len(name) > 8:
                    raise FleetError(f"fleet name {name!r} is longer than 8 characters")
                if name not in taken:
                    break
            free = [n for n in AUTO_NETS if n not in used]
            if not free:
                raise FleetError(f"every net in {AUTO_NETS} is in use")
            fleet = cls(name, free[0])
            fleet.home.mkdir(parents=True, exist_ok=True)
            (fleet.home / "net").write_text(f"{fleet.net}\n")
        return fleet

    @classmethod
    def attach(cls, name: str) -> Fleet:
        """A fleet that is already up (e.g. `OXZ_FLEET=name fleet.sh up`), read from its home."""
        home = FLEET_DIR / "fleets" / name
        net = int((home / "net").read_text())
        hosts = re.findall(r"^(h\d+) ansible_host=", (home / "inventory.ini").read_text(), re.M)
        return cls(name, net, len(hosts))

    # ---- where things are ----
    @property
    def home(self) -> Path:
        return FLEET_DIR / "fleets" / self.name

    @property
    def inventory(self) -> Path:
        return self.home / "inventory.ini"

    @property
    def hosts(self) -> list[str]:
        return [f"h{i}" for i in range(1, self.size + 1)]

    @property
    def bridge_ns(self) -> str:
        return f"{self.name}-net"

    @property
    def namespaces(self) -> list[str]:
        return [self.bridge_ns, *(f"{self.name}-{h}" for h in self.hosts)]

    @property
    def ssh_key(self) -> Path:
        return FLEET_DIR / "ssh" / "id_ed25519"

    def container(self, host: str) -> str:
        return f"{self.name}-{host}"

    def address(self, host: str) -> str:
        return f"198.18.{self.net}.{10 + int(host.lstrip('h'))}"

    # ---- life cycle ----
    def _sh(self, *args: str, timeout: float = 300,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "OXZ_FLEET": self.name, "OXZ_FLEET_NET": str(self.net),
                    **(env or {})}
        return _run(["bash", str(FLEET_SH), *args], timeout=timeout, env=full_env)

    def up(self, n: int = 3, build_hosts: Sequence[str] = (),
           noisy_hosts: Sequence[str] = ()) -> Fleet:
        """Start hosts h1..hN and wait for their sshd; on failure nothing is left running.

        `build_hosts` get the image with a compiler; `noisy_hosts` print around every command
        what untidy real hosts do: sudo's "unable to resolve host", a ~/.bashrc that echoes, an
        sshd Banner and a MOTD (see fleet.sh, OXZ_FLEET_NOISY_HOSTS).
        """
        env = {"OXZ_FLEET_BUILD_HOSTS": ",".join(build_hosts)} if build_hosts else {}
        if noisy_hosts:
            env["OXZ_FLEET_NOISY_HOSTS"] = ",".join(noisy_hosts)
        self.size = n
        STARTED.append(self)
        try:
            self._sh("up", str(n), env=env, timeout=1800)
            self.traces = self._container_traces()
        except BaseException:
            self.down()
            raise
        return self

    def _container_traces(self) -> list[str]:
        """Container ids and overlay mount points: strings no mount or process may hold later."""
        ids = _run(["podman", "ps", "-a", "-q", "--no-trunc", "--filter",
                    f"label={LABEL}={self.name}"], env=podman_env()).stdout.split()
        merged = _run(["podman", "inspect", "--format", "{{.GraphDriver.Data.MergedDir}}", *ids],
                      env=podman_env()).stdout.split() if ids else []
        return ids + merged

    def down(self) -> None:
        self._sh("down", timeout=120)  # ends the ssh masters too: it kills their ProxyCommands
        for cp_dir in Path("/tmp").glob(f"oxz-cp-{self.name}-*"):
            shutil.rmtree(cp_dir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """Anything of this fleet still on the machine: containers, namespaces, mounts, home."""
        found = []
        ps = _run(["podman", "ps", "-a", "--filter", f"label={LABEL}={self.name}",
                   "--format", "{{.Names}}"], env=podman_env(), check=False).stdout.split()
        found += [f"container {c}" for c in ps]
        prefix = f"{self.name}-"
        found += [f"namespace {ns}" for ns in live_namespaces()
                  if ns.startswith(prefix) and re.fullmatch(r"h\d+|net", ns[len(prefix):])]
        marks = [f"/run/netns/{prefix}", *self.traces]
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if any(m in line for m in marks):
                found.append(f"mount {line.split()[4]}")
        # conmon and container processes name the container id; `ip netns exec` its namespace
        marks = [*(f"{ns}\0" for ns in self.namespaces), f"/tmp/oxz-cp-{self.name}-",
                 *self.traces]
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc / "cmdline").read_text()
            except OSError:
                continue
            if proc.name != str(os.getpid()) and any(m in cmdline for m in marks):
                found.append(f"process {proc.name}: {cmdline.replace(chr(0), ' ').strip()}")
        if self.home.exists():
            found.append(f"directory {self.home}")
        return found

    # ---- reaching the hosts ----
    def run_on(self, host: str, cmd: str | Sequence[str], *, check: bool = False,
               user: str | None = None, input: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `cmd` on `host` through `podman exec` (no SSH): a str goes to `sh -c`."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        opts = ["-i"] if input is not None else []
        opts += ["--user", user] if user else []
        return _run(["podman", "exec", *opts, self.container(host), *argv], check=check,
                    timeout=timeout, env=podman_env(), input=input)

    def sh(self, host: str, cmd: str, *, timeout: float = 120) -> str:
        """Run a shell command on `host` that must succeed; its stdout."""
        return self.run_on(host, cmd, check=True, timeout=timeout).stdout

    def copy_to(self, host: str, src: Path | str, dest: str) -> None:
        """Copy a controller file or directory to `dest` on `host` (podman cp semantics)."""
        _run(["podman", "cp", str(src), f"{self.container(host)}:{dest}"], env=podman_env())

    def write_file(self, host: str, path: str, content: str, mode: str = "0644") -> None:
        self.run_on(host, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
                           "write", path, mode], input=content, check=True)

    def require_sudo_password(self, host: str, password: str | None) -> None:
        """The deploy user's sudo on `host` asks for `password` (its login password), every time,
        as on hosts without NOPASSWD; None puts the fleet's passwordless sudo back."""
        if password is None:
            rule, setpw = "deploy ALL=(ALL) NOPASSWD:ALL\n", "usermod -p '!' deploy"
        else:
            rule = "Defaults:deploy timestamp_timeout=0\ndeploy ALL=(ALL) ALL\n"
            setpw = "chpasswd"
        self.write_file(host, "/etc/sudoers.d/deploy", rule, mode="0440")
        self.run_on(host, setpw, input=f"deploy:{password}\n" if password else "", check=True)

    def in_bridge(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the bridge namespace, where the hosts' addresses are reachable."""
        return ["ip", "netns", "exec", self.bridge_ns, *argv]

    def ssh_command(self, host: str, *cmd: str, user: str = "deploy") -> list[str]:
        """argv that runs `cmd` on `host` over SSH as the controller would (key, ProxyCommand)."""
        return ["ssh", "-i", str(self.ssh_key),
                "-o", f"ProxyCommand=ip netns exec {self.bridge_ns} nc %h %p",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                f"{user}@{self.address(host)}", *cmd]

    def ssh(self, host: str, cmd: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return _run(self.ssh_command(host, cmd), check=False, timeout=timeout)

    def http(self, host: str, port: int = 8000, path: str = "/",
             timeout: float = 5) -> HttpResponse:
        """GET http://<host>:<port><path> from the controller's side of the bridge.

        Raises FleetError when nothing answers (refused, unreachable, timeout).
        """
        url = f"http://{self.address(host)}:{port}{path}"
        proc = _run(self.in_bridge([sys.executable, "-c", _HTTP_GET, url, str(timeout)]),
                    check=False, timeout=timeout + 10)
        if proc.returncode != 0:
            raise FleetError(f"GET {url}: {proc.stderr.strip() or proc.stdout.strip()}")
        answer = json.loads(proc.stdout)
        return HttpResponse(answer["status"], answer["body"], answer["headers"])

    def wait_http(self, host: str, port: int = 8000, path: str = "/", *, status: int = 200,
                  timeout: float = 30) -> HttpResponse:
        """Poll until GET answers with `status`; FleetError with the last answer otherwise."""
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while True:
            try:
                resp = self.http(host, port, path, timeout=2)
                if resp.status == status:
                    return resp
                last = f"{resp.status} {resp.body.strip()}"
            except FleetError as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise FleetError(f"{host}:{port}{path} did not answer {status} in {timeout:.0f} s:"
                                 f" {last}")
            time.sleep(0.3)

    # ---- faults ----
    def pause(self, host: str) -> None:
        """Freeze every process of `host`: it keeps its address but never answers."""
        self._sh("pause", host)

    def unpause(self, host: str) -> None:
        self._sh("unpause", host)

    def stop(self, host: str) -> None:
        """Power `host` off (its disk is kept)."""
        self._sh("stop", host)

    def start(self, host: str) -> None:
        """Power `host` back on and wait for its sshd."""
        self._sh("start", host)

    def restart(self, host: str) -> None:
        """Reboot `host` the hard way (`podman restart -t 0`: no clean shutdown) and wait for its
        sshd; its network namespace, address and disk are kept, everything under /run is not."""
        self._sh("restart", host)

    def cut(self, host: str) -> None:
        """Unplug `host` from the bridge: its packets go nowhere."""
        self._sh("cut", host)

    def mend(self, host: str) -> None:
        self._sh("mend", host)

    def fill(self, host: str, path: str, size_mb: int | None = None, *,
             free_mb: int | None = None) -> None:
        """Make `path` on `host` a filesystem of `size_mb`, or of what it holds + `free_mb`.

        What `path` holds is carried over; writes beyond the size fail with ENOSPC. The small
        filesystem lives only in the host's mount namespace: stop/start or down drops it.
        """
        if (size_mb is None) == (free_mb is None):
            raise ValueError("fill takes exactly one of size_mb and free_mb")
        self._sh("fill", host, path, str(size_mb) if size_mb is not None else f"+{free_mb}")

    def unfill(self, host: str, path: str) -> None:
        """`path` back on the host's own disk, with what it holds now."""
        self._sh("unfill", host, path)

    # ---- the controller ----
    def control_path_dir(self, work_dir: Path) -> Path:
        """SSH control sockets of runs in `work_dir`: one directory per work dir, so a test never
        reuses a master connection an earlier test opened (a master to a host that has since
        been paused or cut hangs instead of failing). Short: a socket path holds 107 bytes."""
        digest = hashlib.sha1(str(Path(work_dir).resolve()).encode()).hexdigest()[:8]
        return Path(f"/tmp/oxz-cp-{self.name}-{digest}")

    def ansible_env(self, work_dir: Path, *, timeout: int = 10) -> dict[str, str]:
        """The environment for a controller command (ansible-runner, the CLI) against this fleet.

        Ansible writes nothing outside `work_dir` and this fleet's SSH control directory; the
        venv running the tests comes first on PATH (ansible-runner needs ansible-playbook there).
        """
        home = Path(work_dir) / "ansible-home"
        cp_dir = self.control_path_dir(work_dir)
        for d in (home / "tmp", cp_dir):
            d.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_TIMEOUT": str(timeout),
            "ANSIBLE_NOCOLOR": "True",
        }

    def run_playbook(self, work_dir: Path, playbook: str | Path, *, limit: str | None = None,
                     extravars: Mapping[str, Any] | None = None, timeout: int = 10,
                     project_dir: Path | None = None) -> Any:
        """Run a playbook on this fleet with ansible-runner; the `ansible_runner.Runner`.

        `playbook` is YAML text (written to `<work_dir>/project/play.yml`) or a playbook path.
        """
        import ansible_runner  # only tests that drive Ansible need it

        work_dir = Path(work_dir)
        (work_dir / "project").mkdir(parents=True, exist_ok=True)
        if isinstance(playbook, str) and "\n" in playbook:
            (work_dir / "project" / "play.yml").write_text(playbook)
            playbook = "play.yml"
        # ansible-runner installs SIGINT/SIGTERM handlers of its own and never takes them back:
        # put ours back, or Ctrl-C would be swallowed for the rest of the test session.
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return ansible_runner.run(
                private_data_dir=str(work_dir), playbook=str(playbook),
                project_dir=str(project_dir) if project_dir else None,
                inventory=str(self.inventory), limit=limit, extravars=dict(extravars or {}),
                envvars=self.ansible_env(work_dir, timeout=timeout), quiet=True,
                rotate_artifacts=0)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def host_outcomes(runner: Any) -> dict[str, str]:
    """Per host of an ansible-runner result: `ok`, `failed` or `unreachable`."""
    stats = runner.stats or {}
    hosts = set().union(*(stats.get(k, {}) for k in ("ok", "dark", "failures", "skipped")))
    out = {}
    for h in sorted(hosts):
        if h in stats.get("dark", {}):
            out[h] = "unreachable"
        elif h in stats.get("failures", {}):
            out[h] = "failed"
        else:
            out[h] = "ok"
    return out


_HTTP_GET = """
import json, sys, urllib.error, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))
except urllib.error.HTTPError as e:
    r = e
except Exception as e:
    sys.exit(f"{type(e).__name__}: {e}")
print(json.dumps({"status": r.status, "body": r.read().decode("utf-8", "replace"),
                  "headers": dict(r.headers)}))
"""


def install_sample_app(fleet: Fleet, hosts: str | Sequence[str] | None = None,
                       **options: Any) -> Any:
    """The sample app on `hosts`, healthy on 3.11: see `tests.fleet.sample_app`."""
    from tests.fleet.sample_app import install_sample_app as install

    return install(fleet, hosts, **options)
