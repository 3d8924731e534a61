"""The example inventories in inventories/: what a new user copies. Each is read by `plan` the way
Ansible's own `ansible-inventory` reads it (groups, group_vars, host_vars), and the platforms that
`plan` shows come from their `oxzep7_platform`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[3]
INVENTORIES = ROOT / "inventories"
SPEC = ROOT / "schemas" / "examples" / "valid" / "app-fleet.yaml"
SOURCES = {
    "staging": INVENTORIES / "staging",
    "production": INVENTORIES / "production",
    "production-file": INVENTORIES / "production" / "hosts.yml",
    "list": INVENTORIES / "hosts.list",
}


def plan(*args: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(cli, ["plan", str(SPEC), "--json", *args])
    data = json.loads(result.output) if result.exit_code == 0 else {}
    return result.exit_code, data, result.output


def ansible_inventory(source: Path) -> dict[str, object]:
    exe = shutil.which("ansible-inventory", path=str(Path(sys.executable).parent))
    assert exe, "ansible-inventory is installed with ansible-core"
    out = subprocess.run([exe, "-i", str(source), "--list"], check=True, capture_output=True,
                         text=True, cwd=INVENTORIES)
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_each_example_reads_as_ansible_reads_it(name: str) -> None:
    listed = ansible_inventory(SOURCES[name])
    hostvars: dict[str, dict[str, object]] = listed.pop("_meta")["hostvars"]  # type: ignore[attr-defined]
    hosts = {h for group in listed.values() for h in group.get("hosts", [])}  # type: ignore[attr-defined]
    inv = load_inventory(SOURCES[name])
    assert sorted(inv.hosts) == sorted(hosts)
    for host in inv.hosts:
        assert inv.inventory_var(host, "oxzep7_platform") == hostvars.get(host, {}).get(
            "oxzep7_platform")


def test_staging_plans_one_build_for_its_one_platform() -> None:
    code, data, out = plan("-i", str(SOURCES["staging"]))
    assert code == 0, out
    assert data["targets"] == ["stage-app1.example.internal", "stage-app2.example.internal"]
    assert [(b["platform"], b["build_host"]) for b in data["build"]] == [  # type: ignore[attr-defined]
        ("debian-12-x86_64", "stage-app1.example.internal")]


@pytest.mark.parametrize("name", ["production", "production-file"])
def test_production_host_vars_win_over_group_vars(name: str) -> None:
    code, data, out = plan("-i", str(SOURCES[name]))
    assert code == 0, out
    builds = {b["platform"]: b for b in data["build"]}  # type: ignore[attr-defined]
    assert builds["debian-11-x86_64"]["hosts"] == ["worker1.example.internal"]
    assert builds["debian-12-x86_64"]["hosts"] == [
        "web1.example.internal", "web2.example.internal", "web3.example.internal"]
    assert "build1.example.internal" not in data["targets"]  # type: ignore[operator]


def test_a_host_list_has_no_groups_so_targets_app_is_refused_with_the_groups_named() -> None:
    code, _, out = plan("-i", str(SOURCES["list"]))
    assert code == 2
    assert "no host matches 'app'" in out


def test_the_readme_of_the_examples_names_every_one() -> None:
    text = (INVENTORIES / "README.md").read_text()
    for source in SOURCES.values():
        rel = source.relative_to(INVENTORIES).parts[0]
        assert f"`{rel}" in text, rel
