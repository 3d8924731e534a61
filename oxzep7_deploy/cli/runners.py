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

from oxzep7_deploy.runner.base import Runner, RunnerFactory


def runner_factory(verbose: int = 0, env: Mapping[str, str] | None = None,
                   execution_node: str | None = None) -> RunnerFactory:
    """Runners for one command: `-v` echoes Ansible's output on stderr; `env` is added to every
    run's environment (e.g. ANSIBLE_TIMEOUT from `audit --timeout`); `execution_node` (an SSH
    destination) runs every batch there."""
    return functools.partial(_runner, echo=verbose > 0, extra_env=dict(env or {}),
                             node=execution_node)


def _runner(*, become: bool = True, echo: bool = False, extra_env: Mapping[str, str] | None = None,
            node: str | None = None) -> Runner:
    if node:
        from oxzep7_deploy.runner.remote import RemoteRunner

        return RemoteRunner(node, extra_env, become=become, echo=echo)
    from oxzep7_deploy.runner.ansible import AnsibleRunner  # ansible_runner loads on first use

    return AnsibleRunner(extra_env, become=become, echo=echo)
