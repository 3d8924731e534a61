"""Where the CLI's human output goes: progress on stderr, the report tables on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxzep7_deploy.cli.progress import ProgressPrinter
from oxzep7_deploy.engine_model import ProgressEvent

ROOT = Path(__file__).resolve().parents[3]


def test_tables_go_to_stdout_and_progress_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    printer = ProgressPrinter()
    printer(ProgressEvent("phase", "wave canary"))
    printer.table("sample: 3 hosts", ["host", "current"], [["h1", "r1"], ["h2", None]])
    out, err = capsys.readouterr()
    assert "h1" in out and "r1" in out and "sample: 3 hosts" in out, "status | grep h1 finds it"
    assert "wave canary" in err and "h1" not in err


def test_quiet_prints_nothing_anywhere(capsys: pytest.CaptureFixture[str]) -> None:
    printer = ProgressPrinter(quiet=True)
    printer(ProgressEvent("phase", "wave canary"))
    printer.table("t", ["host"], [["h1"]])
    assert capsys.readouterr() == ("", "")


CHILD = """
import sys
from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.main import main
from tests.fakes import FakeHosts

runners.runner_factory = FakeHosts().runner_factory  # every host answers each step went fine
sys.argv = ["oxzep7-deploy", "apply", sys.argv[1], "-i", "h1,h2,h3,", "--yes"]
main()
"""


def test_apply_into_a_closed_pipe_goes_on_and_exits_with_its_outcome(tmp_path: Path) -> None:
    """`apply 2>&1 | head` after head has exited: the deploy is carried out, not cut short."""
    from tests.unit.cli.test_several_inventories import SPEC

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    records = tmp_path / "records"
    env = {**os.environ, "OXZEP7_RECORDS": str(records), "PYTHONPATH": str(ROOT)}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(spec)], stdout=write_end,
                              stderr=write_end, env=env, cwd=tmp_path, timeout=120)
    finally:
        os.close(write_end)
    reports = list(records.glob("deploys/sample-py313/*/report.json"))
    assert len(reports) == 1, "the deploy ran to its end"
    assert json.loads(reports[0].read_text())["outcome"] == "succeeded"
    assert done.returncode == 0, "the exit code is the deploy's"
    assert not (records / "logs").exists(), "no crash log"
