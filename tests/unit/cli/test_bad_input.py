"""Bad input is refused before any host is touched, and the CLI ends plainly when its reader
goes away or the operator says no (issue 12, item 7)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from tests.fakes import FakeHosts
from tests.unit.cli.test_several_inventories import SPEC as EXISTING_SPEC

UNREACHABLE = "h1 ansible_host=127.0.0.9 ansible_port=1\n"  # loopback, nothing listens there


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


# ---- a local archive's sha256 is checked before any host is contacted ----


def source_spec(tmp_path: Path, sha256: str) -> tuple[Path, Path]:
    archive = tmp_path / "Python-3.13.5.tar.xz"
    archive.write_bytes(b"not the archive the spec means")
    spec = tmp_path / "spec.yaml"
    spec.write_text(EXISTING_SPEC.replace(
        "install: {method: existing, executable: /usr/local/bin/python3.13}",
        f"install: {{method: source, url: {archive}, sha256: '{sha256}'}}"))
    return spec, archive


@pytest.mark.parametrize("command", [["apply", "--yes"], ["plan"]])
def test_a_wrong_sha256_of_a_local_archive_is_refused_before_any_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    records = tmp_path / "records"
    monkeypatch.setenv("OXZEP7_RECORDS", str(records))
    spec, archive = source_spec(tmp_path, "0" * 64)
    inventory = tmp_path / "inv.ini"
    inventory.write_text(UNREACHABLE)
    code, out, err = invoke(command[0], str(spec), "-i", str(inventory), *command[1:])
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert code == 2, (out, err)
    assert (f"error: {spec}: interpreter.install.sha256: checksum mismatch for {archive}: the spec "
            f"says {'0' * 64}, the file's sha256 is {actual}; no host was contacted") in err
    assert "hint: fix interpreter.install.sha256 in the spec" in err
    assert not list(records.glob("**/runs/*")), "no Ansible run (no facts) before the refusal"
    assert not (records / "deploys").exists(), "no record of a deploy"


def test_a_wrong_sha256_with_json_is_one_json_document(tmp_path: Path) -> None:
    spec, _ = source_spec(tmp_path, "f" * 64)
    code, out, _ = invoke("apply", str(spec), "-i", "127.0.0.9,", "--yes", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["exit_code"] == 2 and "checksum mismatch" in doc["error"]


def test_the_right_sha256_passes(tmp_path: Path) -> None:
    spec, archive = source_spec(tmp_path, "0" * 64)
    spec.write_text(spec.read_text().replace("0" * 64, hashlib.sha256(archive.read_bytes())
                                             .hexdigest().upper()))
    code, _, err = invoke("plan", str(spec), "-i", "h1,")
    assert code == 0, err


# ---- --app and a deploy's NAME become paths on the controller: checked first ----


@pytest.mark.parametrize("command", [
    ["status"], ["history"], ["rollback", "--yes"], ["unlock", "--yes"],
])
@pytest.mark.parametrize("app", ["../../etc", "Billing", "a/b", "", "billing\n"])
def test_an_app_name_the_spec_would_refuse_is_refused_before_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], app: str) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv("OXZEP7_RECORDS")  # the default, .oxzep7 here
    code, out, err = invoke(*command, "-i", "127.0.0.9,", "--app", app)
    assert code == 2 and out == ""
    assert f"Invalid value for '--app': {app!r} is not an application name" in err
    assert "lowercase letters, digits, dashes and underscores" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b"], "nothing written anywhere"
    code, out, _ = invoke(*command, "-i", "127.0.0.9,", "--app", app, "--json")
    doc = json.loads(out)
    assert code == 2 and doc["exit_code"] == 2 and "is not an application name" in doc["error"]


@pytest.mark.parametrize("command", ["promote", "abort"])
def test_a_deploy_name_the_spec_would_refuse_is_refused(command: str) -> None:
    code, _, err = invoke(command, "../../x", "--yes")
    assert code == 2 and "Invalid value for 'NAME': '../../x' is not a deploy name" in err


def test_an_app_name_with_an_underscore_is_an_application_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    FakeHosts().install(monkeypatch)
    code, out, err = invoke("status", "-i", "h1,", "--app", "my_app", "--json")
    assert code == 0 and json.loads(out)["app"] == "my_app", err


# ---- "n" at a confirmation: said, nothing left behind, a JSON document with --json ----


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeHosts().install(monkeypatch)
    monkeypatch.setattr("oxzep7_deploy.cli.output.is_terminal", lambda: True)


@pytest.mark.parametrize("as_json", [False, True])
def test_no_at_the_apply_question_does_nothing_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: None, as_json: bool) -> None:
    records = tmp_path / "records"
    monkeypatch.setenv("OXZEP7_RECORDS", str(records))
    spec = tmp_path / "spec.yaml"
    spec.write_text(EXISTING_SPEC)
    code, out, err = invoke("apply", str(spec), "-i", "h1,h2,", *(["--json"] if as_json else []),
                            stdin="n\n")
    assert code == 2
    assert "apply release" in err, "the question was asked"
    assert ("error: aborted; nothing done" in err) is not as_json
    if as_json:
        doc = json.loads(out)
        assert doc == {"ok": False, "error": "aborted; nothing done",
                       "hint": "answer y to go ahead, or pass --yes to skip the question",
                       "exit_code": 2}
    assert not (records / "deploys").exists(), "no release folder, no record of a deploy"
    code, _, err = invoke("apply", str(spec), "-i", "h1,h2,", stdin="y\n")
    assert code == 0, err


@pytest.mark.parametrize("command", [["rollback"], ["unlock"], ["unlock", "--force"]])
def test_no_at_a_host_command_question_does_nothing_and_says_so(
        tmp_path: Path, terminal: None, command: list[str]) -> None:
    code, out, err = invoke(*command, "-i", "h1,", "--app", "sample", stdin="n\n")
    assert code == 2 and out == ""
    assert "error: aborted; nothing done" in err and "pass --yes" in err
    code, out, _ = invoke(*command, "-i", "h1,", "--app", "sample", "--json", stdin="n\n")
    assert code == 2 and json.loads(out)["error"] == "aborted; nothing done"


# ---- a closed stdout (`| head`) ends every command quietly ----

ROOT = Path(__file__).resolve().parents[3]
CHILD = """
import sys
from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.main import main
from tests.fakes import FakeHosts

runners.runner_factory = FakeHosts().runner_factory  # every host answers each step went fine
sys.argv = ["oxzep7-deploy", *sys.argv[1:]]
main()
"""
HOSTS = "h1,h2,h3,"
GATED = EXISTING_SPEC + """rollout:
  stages:
    - {name: canary, hosts: 1, promote: manual}
    - {name: all, hosts: '100%'}
"""
APPLY = ["apply", "{spec}", "-i", HOSTS, "--yes"]
COMMANDS = [  # (what runs before, with stdout open), the command, its exit code
    ([], ["validate", "{spec}"], 0),
    ([], ["plan", "{spec}", "-i", HOSTS], 0),
    ([], APPLY, 0),
    ([APPLY], ["promote", "sample-py313", "--yes"], 0),
    ([APPLY], ["abort", "sample-py313", "--yes"], 1),  # rolled back: 1, as with stdout open
    ([], ["status", "-i", HOSTS, "--app", "sample"], 0),
    ([], ["history", "-i", HOSTS, "--app", "sample"], 0),
    ([], ["rollback", "-i", HOSTS, "--app", "sample", "--yes"], 0),
    ([], ["unlock", "-i", HOSTS, "--app", "sample", "--yes"], 0),
    ([], ["audit", "-i", HOSTS], 0),
    ([], ["init", "--dir", "{tmp}/init"], 0),
]


def run_child(tmp_path: Path, args: list[str], closed: bool) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(GATED)
    env = {**os.environ, "OXZEP7_RECORDS": str(tmp_path / "records"), "PYTHONPATH": str(ROOT)}
    argv = [a.format(spec=spec, tmp=tmp_path) for a in args]
    read_end, write_end = os.pipe()
    if closed:
        os.close(read_end)  # like `| head` that has already exited
    try:
        return subprocess.run([sys.executable, "-c", CHILD, *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                              timeout=120)
    finally:
        os.close(write_end)
        if not closed:
            os.close(read_end)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("before", "args", "code"), COMMANDS, ids=[c[1][0] for c in COMMANDS])
def test_a_closed_stdout_ends_every_command_quietly_with_its_own_exit_code(
        tmp_path: Path, before: list[list[str]], args: list[str], code: int, as_json: bool) -> None:
    for earlier in before:
        assert run_child(tmp_path, earlier, closed=False).returncode == 0
    done = run_child(tmp_path, [*args, *(["--json"] if as_json else [])], closed=True)
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "records" / "logs").exists(), "no crash log"
    assert done.returncode == code, done.stderr


# ---- an inventory Ansible cannot parse: its file, line and what is wrong ----

GOLDEN_SPEC = ROOT / "tests" / "golden" / "plans" / "canary-source.yaml"


@pytest.mark.parametrize(("name", "text", "says"), [
    ("inv.ini", "[web\nh1\n",
     "{path}:1: cannot be parsed (INI): `[web` opens a [section] that is not closed with ]"),
    ("inv.ini", "[web]\nh1\nh2 ansible_port=22 = x\n",
     "{path}:3: cannot be parsed (INI): Expected key=value host variable assignment, got: x; "
     "the line reads `h2 ansible_port=22 = x`"),
    ("inv.ini", "[web]\nh1\n[web:children]\nweb\n",
     "{path}:4: cannot be parsed (INI): can't add group to itself; the line reads `web`"),
    ("inv.yml", "all:\n  hosts:\n    h1:\n   bad: [\n",
     "{path}:4:4: cannot be parsed (yaml): YAML parsing failed: While parsing a block mapping did "
     "not find expected key; the line reads `bad: [`"),
    ("inv.yml", "all:\n  hosts: [h1, h2]\n",
     "{path}: cannot be parsed (yaml): Invalid \"hosts\" entry for \"all\" group, requires a "
     "dictionary, found \"list\" instead."),
])
def test_an_inventory_ansible_cannot_parse_is_named_with_its_line(
        tmp_path: Path, name: str, text: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, _, err = invoke("plan", str(GOLDEN_SPEC), "-i", str(path))
    assert code == 2
    assert f"error: inventory {says.format(path=path)}\n" in err
    assert "Traceback" not in err and "[WARNING]" not in err
    code, out, _ = invoke("status", "-i", str(path), "--app", "billing", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["error"] == f"inventory {says.format(path=path)}"
    assert doc["hint"].startswith("fix ")


def test_a_broken_file_in_an_inventory_directory_is_not_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "inventory"
    folder.mkdir()
    (folder / "a.ini").write_text("[billing]\nb1\n[prod:children]\nbilling\n")
    (folder / "b.ini").write_text("[billing]\nb2\n[x\n")  # b2 would go missing
    code, _, err = invoke("plan", str(GOLDEN_SPEC), "-i", str(folder))
    assert code == 2
    assert f"error: inventory {folder / 'b.ini'}:3: cannot be parsed (INI): `[x` opens" in err
    assert f"hint: fix line 3 of {folder / 'b.ini'}" in err
