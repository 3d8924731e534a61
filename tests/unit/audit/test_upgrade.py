"""What an upgrade would change on a host, and the risks found before touching anything."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from oxzep7_deploy.audit.model import HostProbe
from oxzep7_deploy.audit.report import build_report
from oxzep7_deploy.audit.upgrade import (
    classify_extension,
    cpython_tag,
    disk_risks,
    extension_risks,
    requires_python_risks,
)
from tests.unit.audit.factories import TARGET, dist, interpreter, probe_doc

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)


def upgrade_of(doc: dict[str, Any], target: Any = TARGET) -> dict[str, Any]:
    report = build_report([HostProbe("h1", "ok", None, doc)], NOW, NOW.date(), target)
    result: dict[str, Any] = report["hosts"]["h1"]["upgrade"]
    return result


@pytest.mark.parametrize(("path", "kind"), [
    ("fastpkg/_speedups.cpython-311-x86_64-linux-gnu.so", "rebuild"),
    ("fastpkg/_speedups.cpython-313-x86_64-linux-gnu.so", "ok"),
    ("fastpkg/_speedups.cpython-313t-x86_64-linux-gnu.so", "ok"),
    ("cryptography/hazmat/bindings/_rust.abi3.so", "ok"),
    ("numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so", "library"),
    ("pillow.libs/libjpeg-45e70d75.so.62.4.0", "library"),
    ("legacy/_old.so", "rebuild"),
    ("pypkg/_x.pypy310-pp73-x86_64-linux-gnu.so", "other-implementation"),
])
def test_classify_extension(path: str, kind: str) -> None:
    assert classify_extension(path, "3.13.5") == kind


def test_cpython_tag() -> None:
    assert cpython_tag("3.13.5") == "cpython-313" and cpython_tag("3.9.0rc1") == "cpython-39"


def test_requires_python_excluding_the_target_is_a_risk_invalid_ones_a_note() -> None:
    risks, notes = requires_python_risks(
        [dist("oldpkg", "1.0", "<3.12"), dist("ok", "1", ">=3.8"), dist("none", "1"),
         dist("weird", "0.1", ">=3.6.*")], "3.13.5")
    assert [r["package"] for r in risks] == ["oldpkg"]
    assert risks[0]["message"] == ("oldpkg 1.0 declares Requires-Python <3.12, which excludes "
                                   "3.13.5: pin a release that supports it")
    assert notes == ["weird 0.1: Requires-Python '>=3.6.*' is not a valid specifier (pip ignores it)"]


def test_extensions_to_rebuild_grouped_by_distribution() -> None:
    risks = extension_risks(
        [dist("fast", "2.0", None, ("fast/a.cpython-311-x86_64-linux-gnu.so",
                                    "fast/b.cpython-311-x86_64-linux-gnu.so", "fast/c.abi3.so")),
         dist("stable", "1.0", None, ("stable/_n.abi3.so",))],
        ["bare/_mod.so"], "3.13.5")
    assert [(r["package"], r["count"]) for r in risks] == [("fast", 2), ("bare (no metadata)", 1)]
    assert "built for cpython-311; the target needs a cpython-313 wheel" in risks[0]["message"]


def test_disk_risks() -> None:
    disks = [{"path": "/opt/p", "role": "prefix", "mount": "/opt", "free_bytes": 100 << 20},
             {"path": "/srv/app", "role": "application", "mount": "/srv", "free_bytes": 100 << 20}]
    risks = disk_risks(disks, venv_bytes=80 << 20)
    assert [r["path"] for r in risks] == ["/opt/p", "/srv/app"]
    assert disk_risks(disks, venv_bytes=10 << 20)[0]["path"] == "/opt/p"


def test_the_planted_host_from_3_11_to_3_13_with_two_risks() -> None:
    up = upgrade_of(probe_doc())
    assert up["change"] == "3.11.2 -> 3.13.5"
    assert up["from"] == {"version": "3.11.2", "interpreter": "/usr/bin/python3.11",
                          "venv": "/srv/app/current/venv", "broken": False}
    assert up["to"] == {"version": "3.13.5", "interpreter": TARGET.executable, "present": False,
                        "found_version": None}
    assert [r["kind"] for r in up["risks"]] == ["requires-python", "c-extension"]
    assert up["packages"] == 4


def test_a_host_without_the_app_gets_a_first_release() -> None:
    doc = probe_doc(app={"venv": TARGET.venv, "exists": False, "realpath": TARGET.venv})
    up = upgrade_of(doc)
    assert up["change"] == "none -> 3.13.5" and up["from"] is None and up["risks"] == []
    assert up["notes"] == ["no venv at /srv/app/current/venv: nothing runs there yet (a first release)"]


def test_already_on_the_target() -> None:
    doc = probe_doc()
    doc["venvs"][0].update(version="3.13.5", running_version="3.13.5")
    doc["app"]["distributions"] = []
    doc["interpreters"].append(interpreter(TARGET.executable, "3.13.5", "oxzep7", "target"))
    up = upgrade_of(doc)
    assert up["change"] == "none: already on 3.13.5" and up["to"]["present"] is True
    assert up["risks"] == []


def test_a_target_executable_of_another_version_is_a_risk() -> None:
    doc = probe_doc()
    doc["interpreters"].append(interpreter(TARGET.executable, "3.13.1", "target"))
    kinds = [r["kind"] for r in upgrade_of(doc)["risks"]]
    assert "target-mismatch" in kinds


def test_a_broken_current_venv_and_an_eol_target_are_risks() -> None:
    doc = probe_doc()
    doc["app"]["realpath"] = "/srv/app/releases/r0/venv"
    up = upgrade_of(doc, replace(TARGET, version="3.8.20"))
    kinds = [r["kind"] for r in up["risks"]]
    assert kinds[:2] == ["broken-venv", "target-eol"]
    assert "the interpreter it was built on is gone" in up["risks"][0]["message"]
