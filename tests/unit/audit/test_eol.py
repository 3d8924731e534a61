"""The shipped table of CPython branches and end-of-life judged on a date."""

from __future__ import annotations

import datetime as dt

import pytest

from oxzep7_deploy.audit.eol import BRANCHES, branch_of, eol_status

D = dt.date


@pytest.mark.parametrize(("version", "branch"), [
    ("3.11.2", "3.11"), ("3.13.0rc1", "3.13"), ("3.7", "3.7"), ("2.7.18", "2.7"),
    ("3.010.1", "3.10"), ("", None), ("python", None),
])
def test_branch_of(version: str, branch: str | None) -> None:
    assert branch_of(version) == branch


@pytest.mark.parametrize(("version", "eol_on"), [
    ("3.6.15", D(2021, 12, 23)),
    ("3.7.17", D(2023, 6, 27)),
    ("3.8.18", D(2024, 10, 7)),
    ("3.9.25", D(2025, 10, 31)),
    ("3.10.19", D(2026, 10, 31)),
    ("3.11.2", D(2027, 10, 31)),
    ("3.12.7", D(2028, 10, 31)),
    ("3.13.5", D(2029, 10, 31)),
    ("3.14.0", D(2030, 10, 31)),
    ("2.7.18", D(2020, 1, 1)),
])
def test_supported_through_its_last_day_eol_the_day_after(version: str, eol_on: dt.date) -> None:
    assert eol_status(version, eol_on).eol is False
    after = eol_status(version, eol_on + dt.timedelta(days=1))
    assert after.eol is True and after.end_of_life == eol_on


def test_the_audit_date_decides() -> None:
    assert eol_status("3.10.12", D(2026, 6, 1)).eol is False
    assert eol_status("3.10.12", D(2026, 11, 22)).eol is True  # the month of its scheduled end ended


def test_a_scheduled_month_is_marked_as_such() -> None:
    assert eol_status("3.12.1", D(2026, 1, 1)).scheduled is True
    assert eol_status("3.8.1", D(2026, 1, 1)).scheduled is False


def test_branches_older_than_the_table_are_eol_newer_ones_unknown() -> None:
    assert eol_status("2.5.6", D(2000, 1, 1)).eol is True
    assert eol_status("1.6.1", D(2000, 1, 1)).eol is True
    newer = eol_status("3.99.0", D(2026, 1, 1))
    assert newer.eol is None and newer.branch == "3.99"
    assert eol_status(None, D(2026, 1, 1)).eol is None
    assert eol_status("garbage", D(2026, 1, 1)).to_json() == {
        "branch": None, "eol": None, "eol_date": None, "eol_scheduled": False}


def test_the_table_is_consistent() -> None:
    names = [b.name for b in BRANCHES]
    assert len(names) == len(set(names))
    assert [b.key for b in BRANCHES] == sorted((b.key for b in BRANCHES), reverse=True)
    for branch in BRANCHES:
        assert branch.first_release < branch.end_of_life
        if branch.key >= (3, 9):  # PEP 602: five years, ending in October
            assert branch.end_of_life.year - branch.first_release.year == 5
            assert branch.end_of_life.month == 10
