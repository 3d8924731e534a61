"""The real runner adapter on the controller itself (local connection): results per host,
data reported through `oxzep7_result`, and `-v` echoing Ansible's own output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.runner.request import HostStatus, RunRequest


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    path = tmp_path / "inv.ini"
    path.write_text(f"here ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                    "gone ansible_host=127.0.0.254 ansible_port=1 ansible_connection=ssh\n")
    return str(path)


def test_results_per_host_with_reported_data(inventory: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_TIMEOUT", "3")
    request = RunRequest("facts.yml", inventory, ("here", "gone"), become=False)
    result = AnsibleRunner(become=False).run(request, tmp_path / "run")
    here, gone = result.hosts["here"], result.hosts["gone"]
    assert here.status is HostStatus.OK and here.result["platform"].count("-") >= 2
    assert gone.status is HostStatus.UNREACHABLE and gone.failed_task == "Gather platform facts"
    assert not result.ok and result.failed_hosts() == ("gone",)
    assert (result.artifacts_dir / "job_events").is_dir(), "every run keeps its events"
    assert "TASK [" not in capsys.readouterr().err, "Ansible's output stays in the records"


LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def test_a_host_list_reaches_ansible_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    monkeypatch.chdir(tmp_path)  # never read as a path under the working directory
    request = RunRequest("facts.yml", "here,", ("here",), extravars=LOCAL, become=False)
    result = AnsibleRunner(become=False).run(request, tmp_path / "run")
    assert list(result.hosts) == ["here"] and result.hosts["here"].status is HostStatus.OK
    assert result.ok


def test_several_sources_are_one_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As with several -i: hosts from each, group vars of one file apply to hosts of another,
    relative paths are read from the working directory, host lists as written."""
    (tmp_path / "web.ini").write_text("[web]\nhere\n")
    (tmp_path / "vars.ini").write_text(
        "[all:vars]\nansible_host=127.0.0.254\nansible_port=1\n"
        f"[web:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n")
    monkeypatch.chdir(tmp_path)
    request = RunRequest("facts.yml", ("web.ini", "vars.ini", "there,"), ("here", "there"),
                         extravars={"ansible_python_interpreter": sys.executable}, become=False)
    monkeypatch.setenv("ANSIBLE_TIMEOUT", "3")
    result = AnsibleRunner(become=False).run(request, tmp_path / "run")
    assert result.hosts["here"].status is HostStatus.OK, "connection vars from the other file"
    assert result.hosts["there"].status is HostStatus.UNREACHABLE, "the host list's, over ssh"


def test_echo_shows_ansible_output_on_stderr(inventory: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    request = RunRequest("facts.yml", inventory, ("here",), become=False)
    AnsibleRunner(become=False, echo=True).run(request, tmp_path / "run")
    captured = capsys.readouterr()
    assert "TASK [Gather platform facts]" in captured.err and captured.out == ""


def test_an_interrupt_cancels_the_playbook_and_reaches_the_caller(inventory: str, tmp_path: Path
                                                                  ) -> None:
    import os
    import signal
    import threading

    play = tmp_path / "slow.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.command: sleep 30\n")
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    threading.Timer(3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    request = RunRequest(str(play), inventory, ("here",), become=False)
    with pytest.raises(KeyboardInterrupt):
        AnsibleRunner(become=False).run(request, tmp_path / "run")
    after = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert after == before, "the handlers in place before the run are put back"


def _running(needle: str) -> list[str]:
    """Command lines of live processes (not zombies) that contain `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupt_leaves_nothing_of_the_playbook_running(inventory: str, tmp_path: Path,
                                                             sig: str) -> None:
    """ansible-runner kills ansible-playbook's process group only; the workers (each in a
    session of its own) and what they run would go on changing hosts after the tool exits."""
    import os
    import signal
    import threading

    from oxzep7_deploy.runner.procs import marked_processes

    play = tmp_path / "slow.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.command: sleep 37.25\n")
    signum = getattr(signal, sig)
    threading.Timer(4, lambda: os.kill(os.getpid(), signum)).start()
    request = RunRequest(str(play), inventory, ("here",), become=False)
    with pytest.raises(KeyboardInterrupt):
        AnsibleRunner(become=False).run(request, tmp_path / "run")
    assert _running("sleep 37.25") == [], "the task the playbook ran goes on"
    assert _running(str(play)) == [], "ansible-playbook or a worker goes on"
    assert marked_processes() == []


def test_verbosity_reaches_ansible_vvv_shows_connections_and_v_does_not(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = RunRequest("facts.yml", "here,", ("here",), extravars=LOCAL, become=False)
    AnsibleRunner(become=False, echo=True, verbosity=1).run(request, tmp_path / "v")
    once = capsys.readouterr().err
    assert "TASK [" in once and "ESTABLISH LOCAL CONNECTION" not in once, once
    AnsibleRunner(become=False, echo=True, verbosity=3).run(request, tmp_path / "vvv")
    assert "ESTABLISH LOCAL CONNECTION" in capsys.readouterr().err


def test_the_become_password_answers_ansibles_prompt_and_is_never_on_disk(tmp_path: Path) -> None:
    """-K: ansible-playbook asks (--ask-become-pass) and the answer comes from memory; unanswered,
    the run would wait for stdin. No file of the run's directory holds the password."""
    secret = "oxz-unit-become-7d2f"
    request = RunRequest("facts.yml", "here,", ("here",), extravars=LOCAL, become=False)
    result = AnsibleRunner(become=False, become_password=secret).run(request, tmp_path / "run")
    assert result.ok and result.hosts["here"].status is HostStatus.OK
    command = (result.artifacts_dir / "command").read_text()
    assert "--ask-become-pass" in command
    leaks = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == []
