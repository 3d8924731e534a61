"""The composition root of the runner seam: the one place that constructs a runner.

Each command calls `runner_factory(...)` with its options and passes the factory (or a runner
from it) down; nothing below the CLI constructs one. Tests put their fake here, and only here.

Two implementations: `AnsibleRunner` runs each batch here; `RemoteRunner` runs it on an execution
node (ansible-runner transmit | worker | process), chosen by `--execution-node` or, for steps of
a command that has a spec, its `ansible.execution_node` (the option wins: the command resolves it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from oxzep7_deploy.cli.output import read_secret
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.runner.base import Runner, RunnerFactory


def for_command(verbose: int = 0, ask_become_pass: bool = False,
                env: Mapping[str, str] | None = None,
                execution_node: str | None = None) -> RunnerFactory:
    """The runners of a command that talks to hosts, from its `-v…`, `-K` and
    `--execution-node` (else the spec's): with `-K` the become password is asked for here,
    once, before any host is contacted."""
    if ask_become_pass and execution_node:
        raise UsageError(f"-K with the execution node {execution_node}: the become password is "
                         "not passed through an execution node",
                         hint="give the node's own Ansible the password (ansible_become_password "
                              "from a vault), or run without the node")
    password = read_secret("BECOME password: ") if ask_become_pass else None
    return runner_factory(verbose=verbose, env=env, become_password=password,
                          execution_node=execution_node)


def runner_factory(verbose: int = 0, env: Mapping[str, str] | None = None,
                   become_password: str | None = None,
                   execution_node: str | None = None) -> RunnerFactory:
    """Runners for one command: `-v` echoes Ansible's output on stderr and `-vv…` raises
    Ansible's own verbosity; `env` is added to every run's environment (e.g. ANSIBLE_TIMEOUT
    from `audit --timeout`); `become_password` (from -K) answers Ansible's become prompt;
    `execution_node` (an SSH destination) runs every batch there."""
    return functools.partial(_runner, echo=verbose > 0, verbosity=verbose,
                             extra_env=dict(env or {}), become_password=become_password,
                             node=execution_node)


def _runner(*, become: bool = True, echo: bool = False, verbosity: int = 0,
            extra_env: Mapping[str, str] | None = None, become_password: str | None = None,
            node: str | None = None) -> Runner:
    if node:
        from oxzep7_deploy.runner.remote import RemoteRunner

        return RemoteRunner(node, extra_env, become=become, echo=echo, verbosity=verbosity)
    from oxzep7_deploy.runner.ansible import AnsibleRunner  # ansible_runner loads on first use

    return AnsibleRunner(extra_env, become=become, echo=echo, verbosity=verbosity,
                         become_password=become_password)
