"""What a new user meets on the commands that need no host: bad input, --json, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.unit.cli.test_cli import INVENTORY, SPEC, invoke


def test_validate_a_directory_reports_one_spec_line(tmp_path: Path) -> None:
    code, out, _ = invoke("validate", str(tmp_path))
    assert code == 2
    assert out.splitlines() == [f"{tmp_path}:1:1: (root): cannot read the spec: Is a directory"]


def test_plan_a_directory_is_a_spec_error(tmp_path: Path) -> None:
    code, out, _ = invoke("plan", str(tmp_path), "-i", str(INVENTORY), "--json")
    doc = json.loads(out)
    assert code == 2 and doc["error"] == f"{tmp_path}: cannot read the spec: Is a directory"
    assert doc["hint"] == "check the path of the spec file"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["validate", "--json"], "Missing argument 'SPEC'."),
        (["plan", str(SPEC), "--json"], "Missing option '-i' / '--inventory'."),
        (["validate", str(SPEC), "--bogus", "--json"], "No such option '--bogus'."),
        (["schema", "extra", "--json"], "Got unexpected extra argument (extra)"),
    ],
)
def test_a_usage_error_with_json_is_one_json_document(args: list[str], error: str) -> None:
    code, out, _ = invoke(*args)
    doc = json.loads(out)
    assert code == 2 and doc["ok"] is False and doc["exit_code"] == 2
    assert doc["error"] == error or doc["error"].startswith(error + " No inventory: ")
    assert "--help" in doc["hint"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["apply", str(SPEC), "--json"], "Missing option '-i' / '--inventory'."),
        (["promote", "--json"], "Missing argument 'NAME'."),
        (["abort", "sample", "--frobnicate", "--json"], "No such option '--frobnicate'."),
        (["status", "--app", "sample", "--json"], "Missing option '-i' / '--inventory'."),
        (["history", "-i", "h1,", "--json"], "Missing option '--app'."),
        (["rollback", "-i", "h1,", "--json"], "Missing option '--app'."),
        (["unlock", "--app", "sample", "--json", "--forse"],
         "No such option '--forse'. (Did you mean one of: '--force', '--verbose'?)"),
        (["audit", "--json"], "Missing option '-i' / '--inventory'."),
    ],
)
def test_a_usage_error_of_a_host_command_with_json_is_one_json_document(
        args: list[str], error: str) -> None:
    code, out, _ = invoke(*args)
    doc = json.loads(out)
    assert code == 2 and doc["ok"] is False and doc["exit_code"] == 2
    assert doc["error"] == error or doc["error"].startswith(error + " No inventory: ")
    assert f"{args[0]} --help` shows the arguments and options" in doc["hint"]


def test_a_usage_error_without_json_stays_clicks_own() -> None:
    code, out, err = invoke("plan", str(SPEC))
    assert code == 2 and out == "" and "Missing option '-i'" in err


def test_init_where_it_cannot_write_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = invoke("init", "--dir", str(blocker / "sub"))
    assert code == 2 and "internal error" not in err
    assert f"error: cannot write {blocker / 'sub'}" in err
    assert "hint: choose a directory you can write to with --dir" in err


def test_ctrl_c_in_plan_stops_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("oxzep7_deploy.cli.cmd_plan.prepare", interrupted)
    code, _, err = invoke("plan", str(SPEC), "-i", str(INVENTORY))
    assert code == 130 and err.strip() == "error: interrupted"


def test_a_closed_pipe_is_not_an_internal_error(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        done = subprocess.run([sys.executable, "-m", "oxzep7_deploy", "schema"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""
    assert not (tmp_path / ".oxzep7").exists(), "no crash log"


def test_plan_text_speaks_in_the_spec_units_and_summarises_large_waves(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: oxzep7.dev/v1\nkind: PythonUpgrade\nname: app-py313\ntargets: all\n"
        "interpreter:\n  version: \"3.13.5\"\n"
        "  install: {method: existing, executable: /usr/local/bin/python3.13}\n"
        "application: {name: app, root: /srv/app}\n"
        "rollout:\n  batch_size: 10\n  dead_man: 90\n  prestage: false\n"
        "  stages: [{name: canary, hosts: 1, bake: 1h30m}, {name: all, hosts: \"100%\"}]\n"
    )
    hosts = ",".join(f"h{i}" for i in range(1, 31)) + ","
    code, out, _ = invoke("plan", str(spec), "-i", hosts)
    assert code == 0
    lines = out.splitlines()
    assert "prestage: off (each batch is prepared just before it is switched)" in lines
    assert "wave 1 canary: switch h1; then no health checks, bake 1h30m" in lines
    assert ("wave 2 all: switch 29 hosts in 3 batches of up to 10 (h2, h3, h4, h5 and 25 more); "
            "then no health checks") in lines
    settings = next(n for n, line in enumerate(lines) if line.startswith("ansible: config file"))
    assert lines[settings - 1] == (
        "failure budget: 0 hosts; on failure: rollback-all; dead-man: 1m30s")


@pytest.mark.parametrize(
    ("outcomes", "release", "note"),
    [
        (["rolled-back"], "{base}.2",
         "note: a deploy of release {base} failed before on this controller; apply makes a new "
         "attempt, {base}.2"),
        (["rolled-back", "stopped"], "{base}.3",
         "note: a deploy of release {base} failed before on this controller; apply makes a new "
         "attempt, {base}.3"),
        (["rolled-back", "paused"], "{base}.2", "note: apply resumes the paused deploy of release {base}.2"),
        ([None], "{base}", "note: apply resumes the unfinished deploy of release {base}"),
    ],
)
def test_plan_shows_the_release_apply_will_use_after_earlier_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcomes: list[str | None], release: str,
    note: str,
) -> None:
    monkeypatch.setenv("OXZEP7_RECORDS", str(tmp_path))
    planned = json.loads(invoke("plan", str(SPEC), "-i", str(INVENTORY), "--json")[1])
    base = planned["release"]
    for attempt, outcome in enumerate(outcomes, 1):
        rid = base if attempt == 1 else f"{base}.{attempt}"
        folder = tmp_path / "deploys" / "billing-py313" / rid
        folder.mkdir(parents=True)
        (folder / "plan.json").write_text(json.dumps({**planned, "release": rid}))  # as apply
        (folder / "spec.yaml").write_bytes(SPEC.read_bytes())  # keeps them: a resume runs them
        progress: dict[str, object] = {"name": "billing-py313", "release": rid, "outcome": outcome,
                                       "hosts": {}}
        (folder / "progress.json").write_text(json.dumps(progress))
    code, out, _ = invoke("plan", str(SPEC), "-i", str(INVENTORY), "--json")
    assert code == 0 and json.loads(out)["release"] == release.format(base=base)
    code, out, _ = invoke("plan", str(SPEC), "-i", str(INVENTORY))
    assert code == 0 and out.splitlines()[-1] == note.format(base=base)


def test_a_closed_pipe_that_reaches_the_boundary_ends_quietly_without_a_crash_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the CLI writes itself falls silent and goes on (test_bad_input); output written some
    other way and cut short is still no internal error (issue 12, item 7)."""
    import click

    from oxzep7_deploy.cli.boundary import error_boundary

    monkeypatch.setenv("OXZEP7_RECORDS", str(tmp_path))

    @click.command()
    @error_boundary
    def changes_hosts() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    result = CliRunner().invoke(changes_hosts, [])
    assert result.exit_code == 141 and result.stderr == ""
    assert not (tmp_path / "logs").exists(), "no crash log"


@pytest.mark.parametrize("command", ["plan", "apply", "status", "history", "rollback", "unlock",
                                     "audit"])
def test_help_names_what_dash_i_takes(command: str) -> None:
    code, out, _ = invoke(command, "--help")
    (line,) = [x for x in out.splitlines() if "--inventory" in x]
    assert code == 0 and "-i, --inventory INVENTORY" in line and "TEXT" not in line


def test_ctrl_c_in_apply_exits_130_and_says_how_to_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("oxzep7_deploy.cli.cmd_apply.prepare", interrupted)
    code, _, err = invoke("apply", str(SPEC), "-i", str(INVENTORY), "--yes")
    assert code == 130, "not 1: nothing was rolled back"
    assert "run the same command again to resume it, or `rollback`" in err


_STOP_IN_PLANNING = """\
import os, signal, sys, time
import oxzep7_deploy.cli.cmd_apply as apply

def planning(*_a, **_k):  # SIGTERM while the deploy is planned, outside any Ansible run
    os.kill(os.getpid(), signal.{sig})
    time.sleep(30)

apply.prepare = planning
from oxzep7_deploy.cli.main import main
sys.argv = ["oxzep7-deploy", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_sigterm_outside_a_run_stops_apply_like_ctrl_c(tmp_path: Path, sig: str, as_json: bool
                                                       ) -> None:
    """Not killed on the spot with 143 (no record, Ansible left running): 130, and what next."""
    args = ["apply", str(SPEC), "-i", str(INVENTORY), "--yes", *(["--json"] if as_json else [])]
    done = subprocess.run([sys.executable, "-c", _STOP_IN_PLANNING.format(sig=sig), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    if as_json:
        doc = json.loads(done.stdout)
        assert doc["ok"] is False and doc["exit_code"] == 130 and doc["error"] == "interrupted"
        assert "run the same command again to resume it" in doc["hint"]
    else:
        assert "error: interrupted" in done.stderr
        assert "hint: run the same command again to resume it, or `rollback`" in done.stderr


def test_an_interrupt_between_runs_stops_what_earlier_runs_left(monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Like an ssh ControlPersist master an earlier Ansible run of this command left: a process
    of its own session that carries the run's mark. Nothing of Ansible outlives an interrupt."""
    from oxzep7_deploy.runner.procs import MARK_VAR, mark

    master = subprocess.Popen(["sleep", "60"], env={**os.environ, MARK_VAR: mark()},
                              start_new_session=True)

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("oxzep7_deploy.cli.cmd_apply.prepare", interrupted)
    try:
        code, _, _ = invoke("apply", str(SPEC), "-i", str(INVENTORY), "--yes")
        assert code == 130
        assert master.wait(timeout=5) is not None, "still running after the command ended"
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()


# ---- SPEC: apply "prompts for confirmation on a terminal; never when stdin is not a terminal" ----


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_the_question_is_asked_on_a_terminal_even_when_stdout_is_piped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`apply spec -i inv | tee log` on a terminal: the person is there, so the question is asked
    (on stderr) and "n" stops it; stdout being a pipe is no answer."""
    from oxzep7_deploy.cli import output
    from oxzep7_deploy.errors import UsageError

    asked: list[str] = []

    def answer_no(question: str, **_kwargs: object) -> bool:
        asked.append(question)
        return False

    monkeypatch.setattr(output.sys, "stdin", _Tty(True))
    monkeypatch.setattr(output.sys, "stdout", _Tty(False))
    monkeypatch.setattr(output.click, "confirm", answer_no)
    with pytest.raises(UsageError, match="aborted; nothing done"):
        output.confirm("apply release r1 to 2 host(s)?", yes=False)
    assert asked == ["apply release r1 to 2 host(s)?"]


@pytest.mark.parametrize(("stdin_tty", "yes"), [(False, False), (True, True)])
def test_no_question_without_a_terminal_on_stdin_or_with_yes(
        monkeypatch: pytest.MonkeyPatch, stdin_tty: bool, yes: bool) -> None:
    from oxzep7_deploy.cli import output

    def fail(*_args: object, **_kwargs: object) -> bool:
        raise AssertionError("asked")

    monkeypatch.setattr(output.sys, "stdin", _Tty(stdin_tty))
    monkeypatch.setattr(output.sys, "stdout", _Tty(True))
    monkeypatch.setattr(output.click, "confirm", fail)
    output.confirm("apply?", yes=yes)
