"""The validated spec as frozen dataclasses: after validation no raw dict travels further."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

DEFAULT_VERIFY_MODULES: tuple[str, ...] = (
    "ssl", "ctypes", "sqlite3", "lzma", "bz2", "zlib", "readline", "uuid", "venv", "ensurepip",
)


class Method(str, Enum):
    SOURCE = "source"
    PACKAGE = "package"
    PREBUILT = "prebuilt"
    EXISTING = "existing"


class BuildMode(str, Enum):
    ONCE_PER_PLATFORM = "once-per-platform"
    ON_EACH_HOST = "on-each-host"


class Strategy(str, Enum):
    CANARY = "canary"
    BLUE_GREEN = "blue-green"
    ROLLING = "rolling"


class OnFailure(str, Enum):
    ROLLBACK_ALL = "rollback-all"
    ROLLBACK_WAVE = "rollback-wave"
    STOP = "stop"


class Restart(str, Enum):
    RESTART = "restart"  # systemctl restart
    RELOAD = "reload"  # systemctl reload: graceful, the app keeps serving


class Inconclusive(str, Enum):
    """What the watch does when the window before the switch is already noisy."""

    PAUSE = "pause"  # the deploy pauses like a manual gate: promote or abort
    FAIL = "fail"  # the host fails, as for a finding
    IGNORE = "ignore"  # noted in the findings only


class Promote(str, Enum):
    AUTO = "auto"
    MANUAL = "manual"


@dataclass(frozen=True)
class HostCount:
    """A number of hosts, absolute (`3`) or a share of the targets (`"25%"`)."""

    value: int
    percent: bool = False

    def resolve(self, total: int) -> int:
        """Hosts this count means out of `total`; a percentage rounds up."""
        if self.percent:
            return min(total, math.ceil(total * self.value / 100))
        return min(total, self.value)

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)

    @classmethod
    def parse(cls, value: object) -> HostCount:
        """`3` -> 3 hosts, `"25%"` -> 25 percent; ValueError for anything else (or above 100%)."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON Schema's integer: YAML `2.0` counts as 2
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(value)
        if isinstance(value, str) and value.endswith("%") and value[:-1].isascii():
            digits = value[:-1]
            if digits.isdigit() and int(digits) <= 100:
                return cls(int(digits), percent=True)
        raise ValueError(f"not a host count or percentage: {value!r}")


@dataclass(frozen=True)
class SourceInstall:
    url: str
    sha256: str
    configure: tuple[str, ...] = ()
    build: BuildMode = BuildMode.ONCE_PER_PLATFORM
    build_host: str | None = None
    method: Method = Method.SOURCE


@dataclass(frozen=True)
class PackageInstall:
    name: str
    executable: str  # default resolved at load time: /usr/bin/python{X.Y}
    manager: str = "auto"  # auto | apt | dnf
    extra: tuple[str, ...] = ()
    repository: str | None = None
    method: Method = Method.PACKAGE


@dataclass(frozen=True)
class PrebuiltInstall:
    url: str
    sha256: str
    method: Method = Method.PREBUILT


@dataclass(frozen=True)
class ExistingInstall:
    executable: str
    method: Method = Method.EXISTING


Install = SourceInstall | PackageInstall | PrebuiltInstall | ExistingInstall


@dataclass(frozen=True)
class Interpreter:
    version: str
    prefix: str
    install: Install
    verify_modules: tuple[str, ...] = DEFAULT_VERIFY_MODULES

    @property
    def minor(self) -> str:
        """`3.13` for `3.13.5`."""
        major, minor = self.version.split(".")[:2]
        return f"{major}.{minor}"

    @property
    def executable(self) -> str:
        """The interpreter's path on each host once installed."""
        if isinstance(self.install, (PackageInstall, ExistingInstall)):
            return self.install.executable
        return f"{self.prefix}/bin/python{self.minor}"


@dataclass(frozen=True)
class Application:
    name: str
    root: str
    code: str | None = None
    requirements: str | None = None  # absolute after loading (resolved against code)
    pip_args: tuple[str, ...] = ()
    wheels: BuildMode = BuildMode.ON_EACH_HOST  # once-per-platform: built on the build host, shipped
    services: tuple[str, ...] = ()
    restart_command: str | None = None
    keep_releases: int = 3
    port: int | None = None  # the {port} placeholder
    restart: Restart = Restart.RESTART
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class HttpCheck:
    url: str
    status: int = 200
    timeout: int = 5  # seconds
    contains: str | None = None


@dataclass(frozen=True)
class CommandCheck:
    command: str


HealthCheck = HttpCheck | CommandCheck


@dataclass(frozen=True)
class Health:
    checks: tuple[HealthCheck, ...] = ()
    retries: int = 10
    interval: int = 2  # seconds


@dataclass(frozen=True)
class Snapshot:
    paths: tuple[str, ...] = ()
    keep: int = 5


@dataclass(frozen=True)
class Preview:
    """The new release run beside the old on each host before its switch, health-checked on
    `port`. `command` None: the ExecStart of application.services[0], <root>/current replaced
    by the new release's directory; `env` names the variable that gives it `port`."""

    port: int
    env: str = "PORT"
    command: str | None = None


@dataclass(frozen=True)
class Watch:
    """During each stage's bake, on the hosts it switched: the journal of the app's units
    (lines with any of `patterns`, literal substrings), unit restarts and crashes, after the
    switch against the same-length window before it."""

    patterns: tuple[str, ...] = ("Traceback (most recent call last)", "CRITICAL")
    max_new: int = 0
    restarts: int = 0
    inconclusive: Inconclusive = Inconclusive.PAUSE


@dataclass(frozen=True)
class Stage:
    name: str
    hosts: HostCount
    bake: int = 0  # seconds
    promote: Promote = Promote.AUTO


@dataclass(frozen=True)
class Rollout:
    strategy: Strategy = Strategy.CANARY
    stages: tuple[Stage, ...] = ()  # defaults filled per strategy at load time
    batch_size: HostCount | None = None  # a cap per batch: hosts, or a share of the targets
    prestage: bool = True
    max_failed: HostCount = HostCount(0)
    on_failure: OnFailure = OnFailure.ROLLBACK_ALL
    dead_man: int = 300  # seconds; 0 disables
    lock_ttl: int = 7200  # seconds


@dataclass(frozen=True)
class AnsibleOptions:
    forks: int | None = None  # None: Ansible's configuration's forks, else 50 (runner decides)
    become: bool = True
    execution_node: str | None = None  # an SSH destination: batches run there


@dataclass(frozen=True)
class Artifacts:
    """Where hosts get the interpreter and wheel-set artifacts. `mirror` None: the controller
    pushes each one; else an http(s) URL without its trailing slash: each host downloads
    `<mirror>/sha256/<sha256>` and checks it against the controller's manifest."""

    mirror: str | None = None

    def url(self, sha256: str) -> str:
        """Where an artifact with this sha256 is on the mirror (the layout `publish` writes)."""
        if self.mirror is None:
            raise ValueError("no artifacts.mirror")
        return f"{self.mirror}/sha256/{sha256}"


@dataclass(frozen=True)
class Spec:
    name: str
    targets: str
    interpreter: Interpreter
    application: Application
    description: str | None = None
    verify: tuple[str, ...] = ()
    health: Health = Health()
    snapshot: Snapshot = Snapshot()
    rollout: Rollout = Rollout()
    ansible: AnsibleOptions = AnsibleOptions()
    preview: Preview | None = None
    watch: Watch | None = None  # None: no `watch` section, nothing watched
    artifacts: Artifacts = Artifacts()
    api_version: str = "oxzep7.dev/v1"
    kind: str = "PythonUpgrade"
    digest: str = ""  # sha256 of the spec file's bytes: recorded in every release
