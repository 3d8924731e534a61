"""CPython branches and their end-of-life dates: a small table shipped with the package.

Source: the Python developer's guide, "Status of Python versions"
(https://devguide.python.org/versions/, data in python/devguide `include/release-cycle.json`),
and PEP 602 (annual release cycle: each branch gets 5 years of support, ending in October).
Checked 2026-11 against the guide's table. Where the guide gives a day, it is the real end of
life; where it gives only the scheduled month (3.10 and later), the branch counts as supported
through that month's last day: "2027-10" means through 2027-10-31, the day 3.9 actually ended.

End of life is judged on the audit date. A branch newer than this table is "unknown" (None), not
supported: update the table when a new branch appears; a branch older than the table is EOL.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

# (branch, first release, end of life "YYYY-MM-DD" or scheduled "YYYY-MM", PEP)
_TABLE: tuple[tuple[str, str, str, int], ...] = (
    ("3.15", "2026-10-01", "2031-10", 790),
    ("3.14", "2025-10-07", "2030-10", 745),
    ("3.13", "2024-10-07", "2029-10", 719),
    ("3.12", "2023-10-02", "2028-10", 693),
    ("3.11", "2022-10-24", "2027-10", 664),
    ("3.10", "2021-10-04", "2026-10", 619),
    ("3.9", "2020-10-05", "2025-10-31", 596),
    ("3.8", "2019-10-14", "2024-10-07", 569),
    ("3.7", "2018-06-27", "2023-06-27", 537),
    ("3.6", "2016-12-23", "2021-12-23", 494),
    ("3.5", "2015-09-13", "2020-09-30", 478),
    ("3.4", "2014-03-16", "2019-03-18", 429),
    ("3.3", "2012-09-29", "2017-09-29", 398),
    ("3.2", "2011-02-20", "2016-02-20", 392),
    ("3.1", "2009-06-27", "2012-04-09", 375),
    ("3.0", "2008-12-03", "2009-06-27", 361),
    ("2.7", "2010-07-03", "2020-01-01", 373),
    ("2.6", "2008-10-01", "2013-10-29", 361),
)


@dataclass(frozen=True)
class Branch:
    """One CPython feature branch (`3.11`) and its support window."""

    name: str
    first_release: dt.date
    end_of_life: dt.date  # the last supported day (for a scheduled month: its last day)
    scheduled: bool  # the date is the scheduled month, not a past fact
    pep: int

    @property
    def key(self) -> tuple[int, int]:
        return branch_key(self.name)


@dataclass(frozen=True)
class EolStatus:
    """What the table says of one version on one date."""

    branch: str | None  # "3.11"; None when the version cannot be read
    eol: bool | None  # None: a branch newer than the table (or an unreadable version)
    end_of_life: dt.date | None
    scheduled: bool = False

    def to_json(self) -> dict[str, object]:
        return {"branch": self.branch, "eol": self.eol,
                "eol_date": self.end_of_life.isoformat() if self.end_of_life else None,
                "eol_scheduled": self.scheduled}


def branch_key(name: str) -> tuple[int, int]:
    major, minor = name.split(".")[:2]
    return int(major), int(minor)


def _end(text: str) -> tuple[dt.date, bool]:
    if re.fullmatch(r"\d{4}-\d{2}", text):
        year, month = (int(p) for p in text.split("-"))
        return dt.date(year, month, calendar.monthrange(year, month)[1]), True
    return dt.date.fromisoformat(text), False


def _build() -> tuple[Branch, ...]:
    out = []
    for name, first, end, pep in _TABLE:
        eol, scheduled = _end(end)
        out.append(Branch(name, dt.date.fromisoformat(first), eol, scheduled, pep))
    return tuple(sorted(out, key=lambda b: b.key, reverse=True))


BRANCHES: tuple[Branch, ...] = _build()
_BY_NAME = {b.name: b for b in BRANCHES}


def branch_of(version: str) -> str | None:
    """`3.11` for `3.11.2`, `3.13.0rc1` or `3.7`; None for what is not a Python version."""
    match = re.match(r"^(\d+)\.(\d+)", version.strip()) if version else None
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


def eol_status(version: str | None, on: dt.date) -> EolStatus:
    """Whether `version`'s branch is past its end of life on `on` (the audit date)."""
    name = branch_of(version or "")
    if name is None:
        return EolStatus(None, None, None)
    branch = _BY_NAME.get(name)
    if branch is not None:
        return EolStatus(name, on > branch.end_of_life, branch.end_of_life, branch.scheduled)
    if branch_key(name) > BRANCHES[0].key:
        return EolStatus(name, None, None)  # newer than this table knows
    return EolStatus(name, True, None)  # older than the table: long gone (1.x, 2.0-2.5)
