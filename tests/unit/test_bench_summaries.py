"""The benchmarks' table rows say met / not met from the samples they keep (bench/plot.py's table
is built from these summaries)."""

from __future__ import annotations

from typing import Any

from bench import build_once_vs_each, restart_gap, rollback_vs_redeploy
from bench.plot import row

MACHINE: dict[str, Any] = {"nproc": 2}


def gap_run(gap: float, failed: int) -> dict[str, Any]:
    return {h: {"loop_gap_s": gap, "failed_requests": failed, "requests": 100,
                "agent_restart_gap_s": gap, "restart_window": [0, 1]} for h in ("h1", "h2")}


def test_restart_gap_rows_need_no_failed_request_for_reload_and_socket() -> None:
    samples = {"restart": {"apply": [gap_run(0.8, 4)], "rollback": []},
               "reload": {"apply": [gap_run(0.0, 0)], "rollback": []},
               "socket": {"apply": [gap_run(0.3, 1)], "rollback": []}}
    doc = restart_gap.report(2, 1, samples, MACHINE)
    rows = {r["what"].rsplit(" ", 1)[-1]: r for r in doc["summary"]}
    assert rows["restart"]["met"] is None  # measured, no goal
    assert rows["reload"]["met"] is True
    assert rows["socket"]["met"] is False  # one request failed
    assert "**NOT met**" in row(rows["socket"])
    assert doc["median"]["restart"]["failed_requests_total"] == 8


def test_restore_rows_against_redeploy_and_the_minimum() -> None:
    samples = {"ours": [4.0, 5.0, 6.0], "peer": [60.0, 50.0, 70.0], "minimum": [4.0, 4.5, 5.0],
               "ours_command": [], "peer_command": [], "minimum_command": [],
               "apply_not_timed": []}
    doc = rollback_vs_redeploy.report(3, 3, samples, MACHINE, "datasette")
    redeploy, minimum = doc["summary"]
    assert redeploy["met"] is True and redeploy["ratio"] == "12.0x faster"
    assert minimum["met"] is True and minimum["ratio"] == "ours take 1.11x its time"
    samples["minimum"] = [3.0, 3.5, 4.0]
    assert rollback_vs_redeploy.report(3, 3, samples, MACHINE, "datasette")["summary"][1][
        "met"] is False


def test_build_row_needs_both_cpu_and_wall() -> None:
    doc = {"hosts": 3, "runs": [{"mode": "once-per-platform", "wall_s": 100.0, "cpu_s": 100.0},
                                {"mode": "on-each-host", "wall_s": 190.0, "cpu_s": 320.0}]}
    assert build_once_vs_each.summarize(doc)["met"] is False  # 1.9x less wall
    doc["runs"][1]["wall_s"] = 210.0
    assert build_once_vs_each.summarize(doc)["met"] is True
