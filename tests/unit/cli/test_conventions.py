"""Ansible's conventions on the command line (issue 14, item 5): -v…-vvv and -K on every command
that talks to hosts, --limit on plan and apply, --check answered, shell completion.

The hosts are tests/fakes.py's stand-in at the runner seam (what reaches the runner factory);
the real runner is tests/unit/runner/test_ansible_runner.py, the fleet tests/e2e/test_conventions.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.runner.events import HostResultCollector
from tests.fakes import FakeHosts
from tests.unit.cli.test_several_inventories import SPEC

ROOT = Path(__file__).resolve().parents[3]
PAUSING = SPEC + ("rollout:\n  stages:\n    - {name: canary, hosts: 1, promote: manual}\n"
                  "    - {name: all, hosts: '100%'}\n")


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHosts:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "pausing.yaml").write_text(PAUSING)
    (tmp_path / "inv.ini").write_text("[web]\nweb1\nweb2\n[db]\ndb1\n[prod]\nweb1\ndb1\n")
    return FakeHosts().install(monkeypatch)


def invoke(*args: str, stdin: str | None = None) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli, [*args, "--json"], input=stdin)
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        doc = result.stdout
    return result.exit_code, doc, result.stderr


HOST_COMMANDS = [
    ["apply", "spec.yaml", "-i", "inv.ini", "--yes"],
    ["status", "-i", "inv.ini", "--app", "sample"],
    ["history", "-i", "inv.ini", "--app", "sample"],
    ["rollback", "-i", "inv.ini", "--app", "sample", "--yes"],
    ["unlock", "-i", "inv.ini", "--app", "sample", "--yes"],
    ["audit", "-i", "inv.ini"],
]


@pytest.mark.parametrize("command", HOST_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("flag", ["-v", "-vv", "-vvv", "--verbose"])
def test_every_host_command_passes_its_verbosity_on(hosts: FakeHosts, command: list[str],
                                                    flag: str) -> None:
    code, doc, err = invoke(*command, flag)
    assert code == 0, (doc, err)
    assert hosts.verbosity == [1 if flag == "--verbose" else len(flag) - 1]


@pytest.mark.parametrize("resume", ["promote", "abort"])
def test_promote_and_abort_pass_their_verbosity_on(hosts: FakeHosts, resume: str) -> None:
    code, doc, err = invoke("apply", "pausing.yaml", "-i", "inv.ini", "--yes")
    assert code == 0 and doc["outcome"] == "paused", (doc, err)
    code, doc, err = invoke(resume, "sample-py313", "--yes", "-vvv")
    assert code == (0 if resume == "promote" else 1), (doc, err)  # abort: rolled back
    assert hosts.verbosity == [0, 3]


@pytest.mark.parametrize("command", HOST_COMMANDS, ids=lambda c: c[0])
def test_K_asks_once_for_the_become_password_and_hands_it_to_the_runners(
        hosts: FakeHosts, command: list[str]) -> None:
    code, doc, err = invoke(*command, "-K", stdin="s3cret pass\n")
    assert code == 0, (doc, err)
    assert hosts.become_passwords == ["s3cret pass"]
    assert err.count("BECOME password: ") == 1 and "s3cret" not in err


def test_without_K_no_password_is_asked_for(hosts: FakeHosts) -> None:
    code, doc, err = invoke("status", "-i", "inv.ini", "--app", "sample", stdin="")
    assert code == 0 and "password" not in err.lower(), (doc, err)
    assert hosts.become_passwords == [None]


def test_K_with_nothing_on_stdin_is_a_usage_error_that_says_so(hosts: FakeHosts) -> None:
    code, doc, _ = invoke("status", "-i", "inv.ini", "--app", "sample", "-K", stdin="")
    assert code == 2 and "no password was given" in doc["error"], doc
    assert "ansible_become_password" in doc["hint"]
    assert hosts.requests == [], "no host contacted"


def test_a_missing_sudo_password_names_the_host_and_suggests_K() -> None:
    collector = HostResultCollector(["web1", "web2"])
    collector.feed({"event": "runner_on_failed", "event_data": {
        "host": "web2", "task": "Read state", "res": {"msg": "Missing sudo password"}}})
    collector.feed({"event": "runner_on_ok", "event_data": {"host": "web1", "res": {}}})
    result = collector.results()
    assert result["web1"].ok
    message = result["web2"].message or ""
    assert message.startswith("Missing sudo password: sudo on web2 asks for a password: "
                              "pass -K (--ask-become-pass)"), message
    assert "ansible_become_password" in message


# -- --limit on plan and apply -------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "targets"), [
    ("web1", ["web1"]),
    ("web", ["web1", "web2"]),
    ("all:!web2", ["web1", "db1"]),
    ("web*", ["web1", "web2"]),
    ("web:db", ["web1", "web2", "db1"]),
    ("web:&prod", ["web1"]),
    ("db1,web2", ["web2", "db1"]),
])
def test_plan_limit_narrows_the_targets_as_ansible_does(hosts: FakeHosts, limit: str,
                                                        targets: list[str]) -> None:
    code, plan, err = invoke("plan", "spec.yaml", "-i", "inv.ini", "--limit", limit)
    assert code == 0, (plan, err)
    assert plan["targets"] == targets
    assert hosts.requests == [], "plan contacts no host"


def test_plan_limit_narrows_the_spec_targets_not_the_inventory(hosts: FakeHosts,
                                                               tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(SPEC.replace("targets: all", "targets: web"))
    result = CliRunner().invoke(cli, ["plan", "web.yaml", "-i", "inv.ini", "--limit", "prod"])
    assert result.exit_code == 0, result.output
    assert "1 target host," in result.stdout and "web1" in result.stdout
    assert "db1" not in result.stdout


@pytest.mark.parametrize(("limit", "said"), [
    ("db*", "none of the targets of sample-py313 ('web': web1, web2) match it"),
    ("nosuch", "no host matches 'nosuch'"),
])
def test_a_limit_that_leaves_no_target_is_a_usage_error(hosts: FakeHosts, tmp_path: Path,
                                                        limit: str, said: str) -> None:
    (tmp_path / "web.yaml").write_text(SPEC.replace("targets: all", "targets: web"))
    for command in (["plan"], ["apply", "--yes"]):
        code, doc, err = invoke(*command, "web.yaml", "-i", "inv.ini", "--limit", limit)
        assert code == 2, (doc, err)
        assert doc["error"].startswith(f"--limit {limit}: ") and said in doc["error"], doc
        assert doc["hint"]
    assert hosts.requests == [], "nothing ran anywhere"
    assert not (tmp_path / ".oxzep7" / "deploys").exists() or not any(
        (tmp_path / ".oxzep7" / "deploys").rglob("meta.json"))


def test_apply_limit_switches_only_the_limited_hosts(hosts: FakeHosts) -> None:
    code, report, err = invoke("apply", "spec.yaml", "-i", "inv.ini", "--limit", "all:!web2",
                               "--yes")
    assert code == 0 and report["outcome"] == "succeeded", (report, err)
    assert sorted(report["hosts"]) == ["db1", "web1"]
    assert sorted(hosts.hosts_of("switch")) == ["db1", "web1"]
    assert all("web2" not in r.limit for r in hosts.requests), "web2 is never touched"


def test_an_unfinished_deploy_is_not_resumed_on_other_hosts(hosts: FakeHosts) -> None:
    code, report, err = invoke("apply", "pausing.yaml", "-i", "inv.ini", "--limit", "web",
                               "--yes")
    assert code == 0 and report["outcome"] == "paused", (report, err)
    hosts.requests.clear()
    code, doc, err = invoke("apply", "pausing.yaml", "-i", "inv.ini", "--limit", "db1", "--yes")
    assert code == 2, (doc, err)
    assert "targets web1, web2; --limit db1 selects db1" in doc["error"], doc
    assert hosts.requests == []


# -- --check -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["apply", "spec.yaml", "-i", "inv.ini", "--check"],
    ["rollback", "-i", "inv.ini", "--app", "sample", "--check", "--yes"],
])
def test_check_says_to_use_plan(hosts: FakeHosts, command: list[str]) -> None:
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2
    assert ("oxzep7-deploy has no --check: use `oxzep7-deploy plan` to see what would change"
            in result.stderr), result.stderr
    assert "No such option" not in result.stderr
    assert hosts.requests == []
    code, doc, _ = invoke(*command)
    assert code == 2 and doc["error"].startswith("oxzep7-deploy has no --check"), doc


# -- shell completion ----------------------------------------------------------------------------


def test_the_completion_readme_documents_works() -> None:
    readme = (ROOT / "README.md").read_text()
    scripts = re.search(r"\[project\.scripts\]\n(\S+) =", (ROOT / "pyproject.toml").read_text())
    assert scripts and scripts.group(1) == "oxzep7-deploy"
    line = 'eval "$(_OXZEP7_DEPLOY_COMPLETE=bash_source oxzep7-deploy)"'
    assert line in readme, "README shows how to turn completion on"
    cli_path = Path(sys.executable).with_name("oxzep7-deploy")
    env = {**os.environ, "_OXZEP7_DEPLOY_COMPLETE": "bash_source"}
    source = subprocess.run([str(cli_path)], env=env, capture_output=True, text=True, timeout=60)
    assert source.returncode == 0, source.stderr
    assert "complete -o nosort -F _oxzep7_deploy_completion oxzep7-deploy" in source.stdout
    env = {**os.environ, "_OXZEP7_DEPLOY_COMPLETE": "bash_complete",
           "COMP_WORDS": "oxzep7-deploy ap", "COMP_CWORD": "1"}
    words = subprocess.run([str(cli_path)], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,apply" in words.stdout.splitlines(), words.stdout
    env["COMP_WORDS"], env["COMP_CWORD"] = "oxzep7-deploy status --li", "2"
    words = subprocess.run([str(cli_path)], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,--limit" in words.stdout.splitlines(), words.stdout


# -- vaulted inventory variables -----------------------------------------------------------------


SOURCE_SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: src
targets: all
interpreter:
  version: "3.13.5"
  install: {method: source, url: "https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tgz",
            sha256: "0000000000000000000000000000000000000000000000000000000000000000"}
application: {name: sample, root: /srv/sample}
"""


def test_vaulted_group_vars_are_read_with_the_vault_password_file_ansible_reads(
        tmp_path: Path) -> None:
    """plan reads group_vars (oxzep7_platform) as Ansible does: a vaulted file there (e.g. with
    ansible_become_password) needs the configured vault password file, not a failure."""
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.ini").write_text("[web]\nh1\nh2\n")
    vaulted = inv / "group_vars" / "all" / "vault.yml"
    vaulted.write_text("ansible_become_password: vaulted-secret\n")
    (tmp_path / "vault-pass").write_text("vault-pw\n")
    subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "encrypt",
                    "--vault-password-file", str(tmp_path / "vault-pass"), str(vaulted)],
                   check=True, capture_output=True, timeout=60)
    (tmp_path / "spec.yaml").write_text(SOURCE_SPEC)
    cli_path = Path(sys.executable).with_name("oxzep7-deploy")
    env = {**os.environ, "OXZEP7_RECORDS": str(tmp_path / "records")}
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    without = subprocess.run([str(cli_path), "plan", "spec.yaml", "-i", "inv"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert without.returncode == 2, without.stdout + without.stderr
    assert "vault-encrypted" in without.stderr and "ANSIBLE_VAULT_PASSWORD_FILE" in without.stderr
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(tmp_path / "vault-pass")
    with_file = subprocess.run([str(cli_path), "plan", "spec.yaml", "-i", "inv"], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=120)
    assert with_file.returncode == 0, with_file.stderr
    assert "2 target hosts" in with_file.stdout
