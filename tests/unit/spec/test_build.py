"""From a valid spec to the frozen model: defaults, derived values, and nothing lost."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from oxzep7_deploy.spec import load_spec
from oxzep7_deploy.spec.model import (
    DEFAULT_VERIFY_MODULES,
    AnsibleOptions,
    Application,
    BuildMode,
    CommandCheck,
    ExistingInstall,
    Health,
    HostCount,
    HttpCheck,
    OnFailure,
    PackageInstall,
    PrebuiltInstall,
    Promote,
    Restart,
    Rollout,
    Snapshot,
    SourceInstall,
    Stage,
    Strategy,
)
from tests.unit.spec.conftest import MINIMAL
from tests.unit.spec.examples import EXAMPLES

VALID = EXAMPLES / "valid"
ALL = HostCount(100, percent=True)


def test_minimal_spec_takes_every_default_of_the_model() -> None:
    spec = load_spec(VALID / "minimal-source.yaml")
    assert spec.interpreter.prefix == "/opt/oxzep7/python/3.13.5"
    assert spec.interpreter.verify_modules == DEFAULT_VERIFY_MODULES
    assert spec.interpreter.install == SourceInstall(
        url="https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tar.xz",
        sha256="93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640",
    )
    assert spec.interpreter.executable == "/opt/oxzep7/python/3.13.5/bin/python3.13"
    assert spec.application == Application(name="billing", root="/srv/billing")
    assert spec.verify == ()
    assert spec.health == Health()
    assert spec.snapshot == Snapshot()
    assert spec.ansible == AnsibleOptions()
    assert spec.rollout == dataclasses.replace(
        Rollout(), stages=(Stage("canary", HostCount(1)), Stage("all", ALL))
    )
    assert spec.description is None


def test_full_spec_carries_every_field() -> None:
    spec = load_spec(VALID / "full.yaml")
    assert spec.description == "Move billing from the system Python to CPython 3.13.5"
    assert spec.targets == "billing:&prod"
    interpreter = spec.interpreter
    assert interpreter.prefix == "/opt/python/3.13.5"
    assert interpreter.verify_modules[-1] == "xml.etree"
    assert interpreter.install == SourceInstall(
        url="https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tar.xz",
        sha256="93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640",
        configure=("--enable-optimizations", "--with-lto"),
        build=BuildMode.ONCE_PER_PLATFORM,
        build_host="build1",
    )
    app = spec.application
    assert (app.root, app.code) == ("/srv/billing", "/srv/billing/app")
    assert app.requirements == "/srv/billing/app/requirements.lock"
    assert app.pip_args == ("--require-hashes",)
    assert app.services == ("billing.service", "billing-worker@1.service")
    assert app.restart_command == "systemctl reload-or-restart billing.service"
    assert app.keep_releases == 4
    assert dict(app.env) == {"BILLING_ENV": "production", "PORT": "8000"}
    assert len(spec.verify) == 3
    assert spec.health == Health(
        checks=(
            HttpCheck(url="http://127.0.0.1:8000/healthz", status=204, timeout=3, contains="ok"),
            CommandCheck(command="{venv}/bin/python -c 'import billing'"),
        ),
        retries=5,
        interval=60,
    )
    assert spec.snapshot == Snapshot(paths=("/etc/billing", "/srv/billing/shared/config.toml"), keep=3)
    assert spec.rollout == Rollout(
        strategy=Strategy.CANARY,
        stages=(
            Stage("canary", HostCount(1), bake=300),
            Stage("quarter", HostCount(25, percent=True), promote=Promote.MANUAL),
            Stage("all", ALL, bake=5400),
        ),
        batch_size=HostCount(10),
        prestage=False,
        max_failed=HostCount(10, percent=True),
        on_failure=OnFailure.ROLLBACK_WAVE,
        dead_man=600,
        lock_ttl=10800,
    )
    assert spec.ansible == AnsibleOptions(forks=20, become=False)


def test_package_executable_defaults_to_usr_bin_python_minor() -> None:
    spec = load_spec(VALID / "package-default-executable.yaml")
    assert spec.interpreter.install == PackageInstall(name="python3.13", executable="/usr/bin/python3.13")
    assert spec.interpreter.executable == "/usr/bin/python3.13"


def test_package_fields() -> None:
    install = load_spec(VALID / "package.yaml").interpreter.install
    assert isinstance(install, PackageInstall)
    assert (install.manager, install.extra) == ("apt", ("python3.12-venv", "python3.12-dev"))
    assert install.repository and install.repository.startswith("deb [signed-by=")
    assert install.executable == "/usr/bin/python3.12"


def test_prebuilt_and_existing() -> None:
    prebuilt = load_spec(VALID / "prebuilt.yaml")
    assert isinstance(prebuilt.interpreter.install, PrebuiltInstall)
    assert prebuilt.interpreter.executable == "/usr/local/python3.13/bin/python3.13"
    existing = load_spec(VALID / "existing.yaml")
    assert existing.interpreter.install == ExistingInstall("/usr/local/bin/python3.14")
    assert existing.interpreter.executable == "/usr/local/bin/python3.14"


def test_default_stages_follow_the_strategy() -> None:
    blue_green = load_spec(VALID / "blue-green.yaml").rollout
    assert (blue_green.strategy, blue_green.stages) == (Strategy.BLUE_GREEN, (Stage("all", ALL),))
    rolling = load_spec(VALID / "rolling.yaml").rollout
    assert (rolling.strategy, rolling.stages, rolling.batch_size) == (Strategy.ROLLING, (), HostCount(2))
    assert rolling.max_failed == HostCount(1)


def test_merge_keys_fill_the_model() -> None:
    checks = load_spec(VALID / "yaml-features.yaml").health.checks
    assert checks == (
        HttpCheck(url="http://127.0.0.1:8000/healthz", timeout=2),
        HttpCheck(url="http://127.0.0.1:8001/healthz", timeout=2),
    )


def test_digest_is_the_sha256_of_the_file() -> None:
    path = VALID / "full.yaml"
    assert load_spec(path).digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_spec_is_frozen() -> None:
    spec = load_spec(VALID / "full.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.application.env["X"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "prefix"),
    [
        ("  prefix: /usr/local/py\n", "/usr/local/py"),
        ("  prefix: /usr/local/python/{version}/\n", "/usr/local/python/3.13.5"),
        ("  prefix: /opt/{version}\n", "/opt/3.13.5"),
        ("  prefix: //opt/./py\n", "/opt/py"),
    ],
)
def test_prefixes_that_are_allowed(
    write_spec: Callable[[str], Path], extra: str, prefix: str
) -> None:
    text = MINIMAL.replace('  version: "3.13.5"\n', '  version: "3.13.5"\n' + extra)
    assert load_spec(write_spec(text)).interpreter.prefix == prefix


def test_whole_number_floats_are_whole_numbers(write_spec: Callable[[str], Path]) -> None:
    text = MINIMAL + (
        "  keep_releases: 3.0\nrollout:\n"
        "  stages: [{name: a, hosts: 2.0}, {name: b, hosts: 100%}]\n"
    )
    spec = load_spec(write_spec(text))
    assert spec.application.keep_releases == 3
    assert spec.rollout.stages[0].hosts == HostCount(2)


def test_serving_fields_port_restart_and_a_percentage_batch_size() -> None:
    spec = load_spec(VALID / "serving.yaml")
    assert (spec.application.port, spec.application.restart) == (8000, Restart.RELOAD)
    assert spec.rollout.batch_size == HostCount(25, percent=True)
    default = load_spec(VALID / "rolling.yaml").application
    assert (default.port, default.restart) == (None, Restart.RESTART)
