"""`plan` against inventories a new user brings: patterns, typos, directories, several -i."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli

SPEC = Path(__file__).resolve().parents[2] / "golden" / "plans" / "canary-source.yaml"

INVENTORY = """\
[web]
w1
w2
w3

[db]
d1

[prod:children]
web
db

[stage]
w3

[retired]
"""


def plan(tmp_path: Path, targets: str, *inventories: str) -> tuple[int, dict[str, object], str]:
    spec = tmp_path / "spec.yaml"
    text = SPEC.read_text().replace('targets: "billing:&prod"', f"targets: {json.dumps(targets)}")
    spec.write_text(text.replace("    build_host: b3\n", ""))
    if not inventories:
        (tmp_path / "inv.ini").write_text(INVENTORY)
        inventories = (str(tmp_path / "inv.ini"),)
    args = ["plan", str(spec), "--json"]
    for inventory in inventories:
        args += ["-i", inventory]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, json.loads(result.stdout), result.stderr


@pytest.mark.parametrize(
    ("targets", "hosts"),
    [
        ("web:&prod", ["w1", "w2", "w3"]),
        ("web:&stage", ["w3"]),
        ("web:!w3", ["w1", "w2"]),
        ("w1,w2", ["w1", "w2"]),
        ("~w[12]", ["w1", "w2"]),
        ("web[0:1]", ["w1", "w2"]),
        ("web:!retired", ["w1", "w2", "w3"]),  # an empty group is a group, not a typo
    ],
)
def test_patterns_select_what_ansible_selects(tmp_path: Path, targets: str, hosts: list[str]) -> None:
    code, doc, _ = plan(tmp_path, targets)
    assert code == 0 and doc["targets"] == hosts


@pytest.mark.parametrize(
    ("targets", "error", "hint"),
    [
        ("w1,w2,wx3", "'wx3' in 'w1,w2,wx3' matches no host or group", "did you mean 'w3'? "),
        ("web:!stag", "'stag' in 'web:!stag' matches no host or group", "did you mean 'stage'? "),
        ("nosuch:web", "'nosuch' in 'nosuch:web' matches no host or group", ""),
    ],
)
def test_a_name_in_the_pattern_that_matches_nothing_is_an_error(
    tmp_path: Path, targets: str, error: str, hint: str
) -> None:
    code, doc, _ = plan(tmp_path, targets)
    assert code == 2
    assert doc["error"] == f"inventory {tmp_path / 'inv.ini'}: {error}"
    assert doc["hint"] == f"{hint}groups there: db, prod, retired, stage, web"


@pytest.mark.parametrize("targets", ["web[", "~[", "["])
def test_a_pattern_ansible_reads_only_in_part_is_refused(tmp_path: Path, targets: str) -> None:
    # Ansible drops the `[`: `web[` would be web, `~[` and `[` every host
    code, doc, _ = plan(tmp_path, targets)
    assert code == 2 and "is not a host pattern Ansible reads as written" in str(doc["error"])
    assert "targets" not in doc


def test_an_inventory_without_hosts_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ini"
    empty.write_text("# nothing yet\n")
    code, doc, _ = plan(tmp_path, "web", str(empty))
    assert code == 2 and doc["error"] == f"inventory {empty} has no hosts"


def test_several_inventories_are_one_inventory(tmp_path: Path) -> None:
    first, second = tmp_path / "a.ini", tmp_path / "b.yml"
    first.write_text("[web]\nw1\nw2\n")
    second.write_text("web:\n  hosts:\n    w3:\nprod:\n  children:\n    web:\n")
    code, doc, _ = plan(tmp_path, "web:&prod", str(first), str(second))
    assert code == 0 and doc["targets"] == ["w1", "w2", "w3"]


def test_platforms_come_from_group_vars_and_host_vars_too(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    (inventory / "hosts.ini").write_text(INVENTORY + "\n[prod:vars]\noxzep7_platform=ini-prod\n")
    (inventory / "group_vars" / "web.yml").write_text("oxzep7_platform: debian-12-x86_64\n")
    (inventory / "host_vars" / "w2.yml").write_text("oxzep7_platform: rocky-9-x86_64\n")
    (inventory / "host_vars" / "w3.yml").write_text('oxzep7_platform: "{{ distro }}"\n')
    code, doc, _ = plan(tmp_path, "prod", str(inventory))
    assert code == 0
    builds = {b["platform"]: b["hosts"] for b in doc["build"]}  # type: ignore[attr-defined]
    assert builds == {
        "debian-12-x86_64": ["w1"],  # group_vars/web.yml beats [prod:vars] in the file
        "rocky-9-x86_64": ["w2"],  # host_vars/ beats group_vars/
        "unknown": ["w3"],  # a template is known only to a play: facts decide at apply
        "ini-prod": ["d1"],
    }


def test_a_build_host_the_inventory_does_not_have_is_named_so(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text().replace("build_host: b3", "build_host: b33"))
    inventory = SPEC.with_suffix(".ini")
    result = CliRunner().invoke(cli, ["plan", str(spec), "-i", str(inventory)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {spec}:11:17: billing-py313: interpreter.install.build_host 'b33' is not a host "
        f"of inventory {inventory}",
        "hint: name a host of the inventory (a target or a build box) as the inventory spells it, "
        "or leave build_host out",
    ]


def plan_with_build_host(tmp_path: Path, build_host: str, extra: str = "", as_json: bool = True
                         ) -> tuple[int, dict[str, object], str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text().replace("build_host: b3", f"build_host: {build_host}"))
    inventory = tmp_path / "inv.ini"
    inventory.write_text(SPEC.with_suffix(".ini").read_text() + extra)
    args = ["plan", str(spec), "-i", str(inventory), *(["--json"] if as_json else [])]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, json.loads(result.stdout) if as_json else {}, result.stderr


def test_a_build_host_outside_the_targets_builds_for_its_platform(tmp_path: Path) -> None:
    code, doc, _ = plan_with_build_host(tmp_path, "db1")  # in billing, not in prod: no target
    assert code == 0
    targets = ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"]
    assert doc["targets"] == targets  # the build host is not added to the targets
    assert doc["build"] == [
        {"platform": "debian-12-x86_64", "build_host": "db1",
         "hosts": ["b1", "b2", "b4", "b5", "b6", "b7", "b8", "b9"], "action": "build-and-ship"},
        {"platform": "rocky-9-x86_64", "build_host": "b3", "hosts": ["b3"],
         "action": "build-and-ship"},
    ]
    waves = doc["waves"]
    assert isinstance(waves, list)
    assert [h for w in waves for h in w["hosts"]] == targets and doc["prestage"] == targets


def test_a_build_host_of_another_platform_than_every_target_is_refused(tmp_path: Path) -> None:
    code, _, err = plan_with_build_host(tmp_path, "arm1",
                                        "\n[builders]\narm1 oxzep7_platform=debian-12-aarch64\n",
                                        as_json=False)
    assert code == 2
    assert err.splitlines() == [
        f"error: {tmp_path / 'spec.yaml'}:11:17: billing-py313: interpreter.install.build_host "
        "'arm1' is debian-12-aarch64, and no "
        "target host is: the targets are debian-12-x86_64, rocky-9-x86_64",
        "hint: name a build host of the targets' platform, or leave build_host out (the first "
        "target of each platform builds then)",
    ]


def test_a_build_host_without_a_known_platform_is_planned_and_apply_reads_facts(
        tmp_path: Path) -> None:
    code, doc, _ = plan_with_build_host(tmp_path, "box", "\n[builders]\nbox\n")
    assert code == 0
    builds = doc["build"]
    assert isinstance(builds, list)
    assert [(b["platform"], b["build_host"]) for b in builds] == [
        ("debian-12-x86_64", "box"), ("rocky-9-x86_64", "b3")]


def test_stages_that_shrink_on_this_inventory_are_refused_by_plan(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text().replace("{name: canary, hosts: 1, bake: 5m}",
                                             "{name: canary, hosts: 4, bake: 5m}"))
    result = CliRunner().invoke(cli, ["plan", str(spec), "-i", str(SPEC.with_suffix(".ini"))])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (  # the spec's file, line and column: its "25%"
        f'error: {spec}:20:30: billing-py313: rollout.stages[1].hosts: "25%" of the 9 targets '
        "(3 hosts) is fewer than the 4 hosts of stages[0]: hosts counts are cumulative (how many "
        "targets run the new release once the stage is done)"
    )


def test_a_broken_group_vars_file_is_an_inventory_error(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.ini").write_text(INVENTORY)
    (inventory / "group_vars" / "web.yml").write_text("oxzep7_platform: [\n")
    code, doc, _ = plan(tmp_path, "web", str(inventory))
    assert code == 2
    assert str(doc["error"]).startswith(f"inventory {inventory}: group_vars/web cannot be read: ")
    assert doc["hint"] == "fix group_vars/web* beside the inventory: Ansible fails on it too"


@pytest.mark.parametrize(
    ("inventory", "error", "hint"),
    [
        ("", "inventory '': an empty -i names no inventory",
         "pass -i with an INI or YAML inventory file, a directory, or 'h1,h2,'"),
        ("w1", "inventory w1: no such file or directory",
         "for the host w1 itself, write -i 'w1,' (a trailing comma makes a host list)"),
        ("missing.ini", "inventory missing.ini: no such file or directory",
         "pass -i with an INI or YAML inventory file, a directory, or 'h1,h2,'"),
    ],
)
def test_an_inventory_that_is_not_there_says_what_to_write(
    tmp_path: Path, inventory: str, error: str, hint: str
) -> None:
    code, doc, _ = plan(tmp_path, "web", inventory)
    assert code == 2 and (doc["error"], doc["hint"]) == (error, hint)


def test_the_user_s_inventory_plugins_are_used_and_the_playbooks_environment_is_left_alone(
        tmp_path: Path) -> None:
    """ansible.cfg enables `advanced_host_list` (`-i 'w[1:3],'`): plan reads it as ansible-playbook
    would, and the strict reading of inventories stays in this process: nothing of it is in the
    environment the playbook runs inherit. A process of its own (Ansible's constants are read once)."""
    (tmp_path / "ansible.cfg").write_text(
        "[inventory]\nenable_plugins = advanced_host_list, host_list, ini\n")
    code = ("import json, os; from oxzep7_deploy.inventory import load_inventory; "
            "inv = load_inventory('w[1:3],'); print(json.dumps([list(inv.hosts), "
            "sorted(k for k in os.environ if k.startswith('ANSIBLE_INVENTORY'))]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)
    hosts, leaked = json.loads(out.stdout.strip().splitlines()[-1])
    assert hosts == ["w1", "w2", "w3"]
    assert leaked == []
    (tmp_path / "ansible.cfg").unlink()  # Ansible's defaults and ours: a broken INI is an error
    (tmp_path / "bad.ini").write_text("[web\nw1\n")
    code = ("from oxzep7_deploy.inventory import load_inventory\n"
            "try:\n    load_inventory('bad.ini')\nexcept Exception as e:\n    print(type(e).__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "InventoryError"
