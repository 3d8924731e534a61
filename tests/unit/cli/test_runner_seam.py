"""The runner seam: every command gets its runners from the composition root
(`oxzep7_deploy.cli.runners`), built from its options; nothing below the CLI constructs one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.runner.ansible import AnsibleRunner
from tests.fakes import FakeHosts
from tests.unit.cli.test_several_inventories import SPEC

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHosts:
    monkeypatch.setenv("OXZEP7_RECORDS", str(tmp_path / "records"))
    monkeypatch.chdir(tmp_path)
    return FakeHosts().install(monkeypatch)


def test_apply_runs_every_step_through_the_one_factory_with_the_spec_become(
        hosts: FakeHosts, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC + "ansible: {become: false}\n")
    result = CliRunner().invoke(cli, ["apply", "spec.yaml", "-i", "h1,h2,", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "succeeded"
    assert hosts.hosts_of("switch") == ["h1", "h2"]
    assert False in hosts.become, "the deploy's steps run without become, as the spec says"


def test_audit_timeout_reaches_the_runner_as_ansible_timeout(hosts: FakeHosts) -> None:
    result = CliRunner().invoke(cli, ["audit", "-i", "h1,", "--timeout", "7", "--json"])
    assert result.exit_code == 0, result.output
    assert hosts.env == [{"ANSIBLE_TIMEOUT": "7"}]


def test_the_factory_makes_ansible_runners_from_the_options() -> None:
    runner = runners.runner_factory(verbose=1, env={"ANSIBLE_TIMEOUT": "7"})(become=False)
    assert isinstance(runner, AnsibleRunner)
    assert (runner._become, runner._echo, runner._extra_env) == (False, True,
                                                                  {"ANSIBLE_TIMEOUT": "7"})


def test_only_the_composition_root_constructs_a_runner() -> None:
    for name in ("AnsibleRunner(", "RemoteRunner("):
        found = subprocess.run(["grep", "-rln", name, "oxzep7_deploy"], cwd=ROOT,
                               capture_output=True, text=True).stdout.split()
        assert found == ["oxzep7_deploy/cli/runners.py"], name


def test_the_spec_s_execution_node_runs_the_deploy_there_and_the_option_overrides_it(
        hosts: FakeHosts, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC + "ansible: {execution_node: deploy@exec1}\n")
    result = CliRunner().invoke(cli, ["apply", "spec.yaml", "-i", "h1,h2,", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert hosts.nodes == ["deploy@exec1"]
    result = CliRunner().invoke(cli, ["apply", "spec.yaml", "-i", "h1,h2,", "--yes", "--json",
                                      "--execution-node", "exec2"])
    assert hosts.nodes[-1] == "exec2"


@pytest.mark.parametrize("command", [
    ["status", "-i", "h1,", "--app", "sample"], ["history", "-i", "h1,", "--app", "sample"],
    ["unlock", "-i", "h1,", "--app", "sample", "--yes"],
    ["rollback", "-i", "h1,", "--app", "sample", "--yes"], ["audit", "-i", "h1,"]])
def test_execution_node_option_reaches_the_runner_of_every_host_command(
        hosts: FakeHosts, command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--execution-node", "exec1", "--json"])
    assert hosts.nodes == ["exec1"], result.output


def test_an_execution_node_that_would_be_an_ssh_option_is_refused(hosts: FakeHosts) -> None:
    result = CliRunner().invoke(cli, ["status", "-i", "h1,", "--app", "sample",
                                      "--execution-node", "-oProxyCommand=touch /tmp/x"])
    assert result.exit_code == 2 and "an SSH destination" in result.output
    assert hosts.nodes == []


def test_the_factory_makes_a_remote_runner_for_an_execution_node() -> None:
    from oxzep7_deploy.runner.remote import RemoteRunner

    runner = runners.runner_factory(execution_node="exec1")(become=False)
    assert isinstance(runner, RemoteRunner) and runner._node_name == "exec1"
