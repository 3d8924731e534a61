"""The collection oxzep7.deploy (playbooks/ is its root): it builds with `ansible-galaxy collection
build`, works installed on its own (as AWX would install it), passes ansible-lint's production
profile, and is the very copy the CLI's runs use. About a minute (ansible-lint)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from oxzep7_deploy import collection
from oxzep7_deploy.paths import playbooks_dir
from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.runner.request import HostStatus, RunRequest

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "playbooks"
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted(p.name for p in (ROOT / "playbooks").glob("*.yml"))
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
MODULES = ("oxzep7_interp_tree.py", "oxzep7_agent.py")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the test extras (pip install -e '.[test]')")
    return str(path)


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    # Ansible's settings that an earlier test's in-process inventory load left in os.environ
    # (ANSIBLE_INVENTORY_UNPARSED_FAILED fails ansible-lint's inventory-less syntax check)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    full = {**inherited, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("built")
    proc = run([tool("ansible-galaxy"), "collection", "build", str(ROOT), "--output-path",
                str(out)], cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("oxzep7-deploy-*.tar.gz")
    return built


def test_the_collection_builds_with_its_modules_roles_and_playbooks(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
        rules = tar.extractfile("plugins/module_utils/oxzep7_rules.py")
        assert rules is not None, "module_utils is a file in the tarball, not a dangling link"
        assert rules.read() == (REPO / "oxzep7_deploy" / "rules.py").read_bytes()
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("oxzep7", "deploy")
    assert tarball.name == f"oxzep7-deploy-{info['version']}.tar.gz"
    for module in MODULES:
        assert f"plugins/modules/{module}" in members
    assert "plugins/filter/oxzep7_output.py" in members
    for role in ROLES:
        assert f"roles/{role}/tasks/main.yml" in members or any(
            n.startswith(f"roles/{role}/tasks/") for n in members), role
    assert {"release", "interpreter_tree", "interpreter_source"} <= set(ROLES)
    for name in PLAYBOOKS:
        assert f"playbooks/{name}" in members, name
    assert {"audit.yml", "interpreter.yml", "release_switch.yml"} <= set(PLAYBOOKS)
    assert not [n for n in members if n.startswith("agent") or "__pycache__" in n]


def test_the_built_collection_installed_on_its_own_resolves_every_playbook(
        tarball: Path, tmp_path: Path) -> None:
    """As AWX uses it: installed from the tarball, no checkout, no oxzep7-deploy paths."""
    where = tmp_path / "collections"
    proc = run([tool("ansible-galaxy"), "collection", "install", "--offline", str(tarball),
                "-p", str(where)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = {"ANSIBLE_COLLECTIONS_PATH": str(where), "ANSIBLE_ROLES_PATH": str(tmp_path / "none")}
    for name in PLAYBOOKS:
        fqcn = f"oxzep7.deploy.{name.removesuffix('.yml')}"
        proc = run([tool("ansible-playbook"), "-i", "localhost,", "--syntax-check", fqcn],
                   cwd=tmp_path, env=env)
        assert proc.returncode == 0, f"{fqcn}: {proc.stdout}{proc.stderr}"


def test_ansible_lint_production_profile_reports_nothing(tmp_path: Path) -> None:
    found = collection.linked(ROOT, cache=tmp_path)  # the collection, for its syntax check
    proc = run([tool("ansible-lint"), "--nocolor", "-f", "pep8"], cwd=ROOT,
               env={"ANSIBLE_COLLECTIONS_PATH": str(found), "HOME": str(tmp_path)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "Profile 'production' was required, and it passed" in out, out[-3000:]
    assert "0 failure(s), 0 warning(s)" in out, out[-3000:]


def test_the_cli_runs_the_collection_it_builds_one_copy(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of the CLI's runner: the playbook's tasks are the collection's own files (through
    its link, no copy), and a playbook of its own finds the collection's module by FQCN."""
    monkeypatch.setenv("OXZEP7_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH", raising=False)
    paths: list[str] = []

    def on_event(event: dict[str, object]) -> None:
        data = event.get("event_data")
        if isinstance(data, dict) and data.get("task_path"):
            paths.append(str(data["task_path"]).rsplit(":", 1)[0])

    result = AnsibleRunner(become=False).run(
        RunRequest("facts.yml", "here,", ("here",), extravars=LOCAL, become=False),
        tmp_path / "facts", on_event)
    assert result.hosts["here"].status is HostStatus.OK, result.hosts["here"]
    assert paths and {Path(p).resolve() for p in paths} == {ROOT / "playbooks" / "facts.yml"}
    assert all("/ansible_collections/oxzep7/deploy/playbooks/" in p for p in paths), paths
    assert playbooks_dir().resolve() == ROOT.resolve()

    play = tmp_path / "probe.yml"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Probe\n      oxzep7.deploy.oxzep7_interp_tree:\n"
        f"        state: probe\n        prefix: {tmp_path}/opt/python/3.13\n        key: k1\n"
        "      register: probed\n"
        "    - name: Report\n      ansible.builtin.set_fact:\n        oxzep7_result: '{{ probed }}'\n")
    result = AnsibleRunner(become=False).run(
        RunRequest(str(play), "here,", ("here",), extravars=LOCAL, become=False),
        tmp_path / "probe")
    here = result.hosts["here"]
    assert here.status is HostStatus.OK, here
    assert here.result.get("current") is False, here.result


def test_one_copy_of_the_content_in_the_repository() -> None:
    """The wheel's data, molecule's collections path and the build all read playbooks/."""
    assert (REPO / "oxzep7_deploy" / "data" / "playbooks").resolve() == ROOT.resolve()
    molecule = REPO / "molecule" / "shared" / "collections" / collection.IN_COLLECTIONS
    assert molecule.resolve() == ROOT.resolve()
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    for name in (*MODULES, "oxzep7_output.py", "galaxy.yml", *PLAYBOOKS):
        copies = [t for t in tracked if t.rsplit("/", 1)[-1] == name]
        assert len(copies) == 1, copies


def test_a_cache_copied_with_its_link_followed_still_links_the_collection(tmp_path: Path) -> None:
    """`cp -rL` or Python's copytree made a real folder of ansible_collections/oxzep7/deploy:
    the next run puts its link back instead of failing ("Is a directory")."""
    base = collection.linked(ROOT, cache=tmp_path)
    link = base / collection.IN_COLLECTIONS
    copied = tmp_path / "copy"
    shutil.copytree(tmp_path, copied)  # follows the link: a folder of the collection now
    moved = copied / base.relative_to(tmp_path) / collection.IN_COLLECTIONS
    assert moved.is_dir() and not moved.is_symlink()
    again = collection.linked(ROOT, cache=copied)
    assert (again / collection.IN_COLLECTIONS).is_symlink()
    assert (again / collection.IN_COLLECTIONS).resolve() == ROOT.resolve()
    assert not [p for p in moved.parent.iterdir() if p.name.startswith(".")], "nothing left over"
    assert link.is_symlink()
