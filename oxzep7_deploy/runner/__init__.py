"""The adapter to Ansible: the only package that imports ansible_runner."""

from oxzep7_deploy.runner.base import EventHandler, Runner, RunnerFactory
from oxzep7_deploy.runner.request import HostResult, HostStatus, RunRequest, RunResult

__all__ = ["EventHandler", "HostResult", "HostStatus", "RunRequest", "RunResult", "Runner",
           "RunnerFactory"]
