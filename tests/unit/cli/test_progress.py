"""Where the CLI's human output goes: progress on stderr, the report tables on stdout."""

from __future__ import annotations

import pytest

from oxzep7_deploy.cli.progress import ProgressPrinter
from oxzep7_deploy.engine_model import ProgressEvent


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
