"""The composition root of the runner seam: the one place that constructs a runner.

Each command calls `runner_factory(...)` with its options and passes the factory (or a runner
from it) down; nothing below the CLI constructs one. Tests put their fake here, and only here.

A second implementation plugs in here too: a class with `run(request, data_dir, on_event)` (the
`Runner` protocol of `oxzep7_deploy.runner.base`), chosen in `runner_factory` (from an option or
the environment), e.g. ansible-runner's transmit/worker on an execution node.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from oxzep7_deploy.cli.output import read_secret
from oxzep7_deploy.runner.base import Runner, RunnerFactory


def for_command(verbose: int = 0, ask_become_pass: bool = False,
                env: Mapping[str, str] | None = None) -> RunnerFactory:
    """The runners of a command that talks to hosts, from its `-v…` and `-K`: with `-K` the
    become password is asked for here, once, before any host is contacted."""
    password = read_secret("BECOME password: ") if ask_become_pass else None
    return runner_factory(verbose=verbose, env=env, become_password=password)


def runner_factory(verbose: int = 0, env: Mapping[str, str] | None = None,
                   become_password: str | None = None) -> RunnerFactory:
    """Runners for one command: `-v` echoes Ansible's output on stderr and `-vv…` raises
    Ansible's own verbosity; `env` is added to every run's environment (e.g. ANSIBLE_TIMEOUT
    from `audit --timeout`); `become_password` (from -K) answers Ansible's become prompt."""
    return functools.partial(_ansible_runner, echo=verbose > 0, verbosity=verbose,
                             extra_env=dict(env or {}), become_password=become_password)


def _ansible_runner(*, become: bool = True, echo: bool = False, verbosity: int = 0,
                    extra_env: Mapping[str, str] | None = None,
                    become_password: str | None = None) -> Runner:
    from oxzep7_deploy.runner.ansible import AnsibleRunner  # ansible_runner loads on first use

    return AnsibleRunner(extra_env, become=become, echo=echo, verbosity=verbosity,
                         become_password=become_password)
