"""The host probe (the zipapp of playbooks/agent/oxzep7_audit/), imported and run locally on temp trees.

The pure parsing (crontabs, unit files, command lines, pyvenv.cfg, version output) is tested
directly; venvs and packages are inspected on venvs made here; the whole probe runs under the
oldest Python it promises (3.6) when this machine has one.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import agents

PROBE_PATH = agents.shipped("oxzep7-audit")
PACKAGE = Path(__file__).resolve().parents[3] / "playbooks" / "agent" / "oxzep7_audit"
probe = agents.load("oxzep7-audit")


# ---- the promises of the file itself ----

@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_the_probe_is_python_3_6_syntax_and_imports_only_the_standard_library(path: Path) -> None:
    tree = ast.parse(path.read_text(), feature_version=(3, 6))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


def oldest_python() -> str | None:
    for candidate in ("/root/.pyenv/versions/3.6.15/bin/python3.6", shutil.which("python3.6")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.skipif(oldest_python() is None, reason="no Python 3.6 on this machine")
def test_the_whole_probe_runs_on_python_3_6_and_prints_one_document(tmp_path: Path) -> None:
    config = base64.b64encode(json.dumps({"paths": [str(tmp_path)], "budget": 20}).encode()).decode()
    out = subprocess.run([str(oldest_python()), "-B", str(PROBE_PATH), "--config-b64", config],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    doc = json.loads(out)
    assert doc["probe"] == 1 and "error" not in doc
    assert doc["python"].startswith("3.6.")
    assert {"os", "disk", "interpreters", "venvs", "units", "cron", "warnings"} <= set(doc)
    assert doc["interpreters"] and all(i["version"] for i in doc["interpreters"] if not i["error"])


# ---- versions ----

@pytest.mark.parametrize(("text", "expected"), [
    ("3.11.2 final 0 cpython", ("3.11.2", "cpython")),
    ("3.13.0 candidate 1 cpython", ("3.13.0rc1", "cpython")),
    ("3.14.0 alpha 7 cpython", ("3.14.0a7", "cpython")),
    ("3.10.14 final 0 pypy", ("3.10.14", "pypy")),
    ("2.7.18 final 0 cpython", ("2.7.18", "cpython")),
    ("Traceback (most recent call last):", (None, None)),
    ("", (None, None)),
])
def test_version_probe_output(text: str, expected: tuple[str | None, str | None]) -> None:
    assert probe.parse_version_output(text) == expected


def test_version_flag_output() -> None:
    assert probe.parse_version_flag("Python 3.8.18\n") == "3.8.18"
    assert probe.parse_version_flag("Python 3.13.0rc1") == "3.13.0rc1"
    assert probe.parse_version_flag("bash: python: not found") is None


def test_an_interpreter_is_asked_its_version_by_running_it(tmp_path: Path) -> None:
    assert probe.interpreter_version(sys.executable)["version"] == ".".join(map(str, sys.version_info[:3]))
    fake = tmp_path / "python3.8"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -c ] && echo '3.8.18 final 0 cpython'"
                    " && exit 0; done\nexit 1\n")
    fake.chmod(0o755)
    assert probe.interpreter_version(str(fake))["version"] == "3.8.18"
    liar = tmp_path / "python3.12"  # the name says 3.12: only running it tells
    liar.write_text("#!/bin/sh\necho 'Python 3.9.1'\n")
    liar.chmod(0o755)
    assert probe.interpreter_version(str(liar))["version"] == "3.9.1"


def test_a_hanging_interpreter_times_out(tmp_path: Path) -> None:
    slow = tmp_path / "python3"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    found = probe.interpreter_version(str(slow), timeout=0.5)
    assert found["version"] is None and "timed out" in found["error"]


def test_interpreters_are_deduplicated_by_realpath_and_hard_link(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real = bindir / "python3.11"
    shutil.copy(sys.executable, real)
    (bindir / "python3").symlink_to("python3.11")
    (bindir / "python").symlink_to("python3")
    os.link(real, bindir / "python3.11m")
    (bindir / "python3-config").write_text("#!/bin/sh\n")
    found = probe.Interpreters()
    found.add_glob(str(bindir / "python*"), "opt")
    (entry,) = found.by_real.values()
    assert sorted(Path(p).name for p in entry["paths"]) == ["python", "python3", "python3.11",
                                                             "python3.11m"]


def test_a_venvs_python_is_not_an_interpreter(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "v")
    found = probe.Interpreters()
    assert found.add(str(venv / "bin" / "python"), "opt") is None


# ---- venvs ----

def make_venv(path: Path, python: str = sys.executable) -> Path:
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def test_pyvenv_cfg_is_read_with_lowercase_keys() -> None:
    cfg = probe.parse_pyvenv_cfg("home = /usr/bin\nInclude-System-Site-Packages = false\n"
                                 "version_info = 3.12.1\n# comment = x\n")
    assert cfg == {"home": "/usr/bin", "include-system-site-packages": "false",
                   "version_info": "3.12.1"}


def test_a_healthy_venv_names_its_interpreter(tmp_path: Path) -> None:
    venv = probe.inspect_venv(str(make_venv(tmp_path / "ok")))
    assert venv["base_exists"] and not venv["problems"]
    assert venv["base_realpath"] == os.path.realpath(sys.executable)
    assert venv["version"] == ".".join(map(str, sys.version_info[:3]))


def test_a_venv_whose_interpreter_was_removed_is_broken(tmp_path: Path) -> None:
    gone = tmp_path / "tmpy" / "bin"
    gone.mkdir(parents=True)
    shutil.copy(os.path.realpath(sys.executable), gone / "python3.11")
    venv_path = make_venv(tmp_path / "broken", str(gone / "python3.11"))
    shutil.rmtree(tmp_path / "tmpy")
    venv = probe.inspect_venv(str(venv_path))
    assert not venv["base_exists"] and venv["base"] == str(gone / "python3.11")
    assert venv["problems"] == [f"the interpreter it was built on is gone: {gone / 'python3.11'}"]
    assert venv["python_realpath"] is None


def test_an_old_venv_without_executable_key_is_judged_by_its_symlink(tmp_path: Path) -> None:
    venv = tmp_path / "old"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /nonexistent/bin\nversion = 3.7.3\n")
    (venv / "bin" / "python3").symlink_to("/nonexistent/bin/python3.7")
    (venv / "bin" / "python").symlink_to("python3")
    found = probe.inspect_venv(str(venv))
    assert found["base"] == "/nonexistent/bin/python3.7" and found["base_from"] == "bin/python symlink"
    assert not found["base_exists"] and len(found["problems"]) == 1


def test_venvs_are_found_under_roots_once_per_realpath(tmp_path: Path) -> None:
    root = tmp_path / "srv" / "app"
    make_venv(root / "releases" / "r1" / "venv")
    make_venv(root / "tools" / "deep" / "er" / "venv")
    (root / "current").symlink_to("releases/r1")
    (root / "node_modules" / "x").mkdir(parents=True)
    make_venv(root / "node_modules" / "x" / "venv")  # never searched
    venvs = probe.Venvs()
    venvs.note(str(root / "current" / "venv"), "application")
    venvs.scan(str(root), probe.Deadline(30))
    found = {v["path"]: v for v in venvs.entries()}
    assert sorted(found) == [str(root / "current" / "venv"), str(root / "tools/deep/er/venv")]
    assert found[str(root / "current" / "venv")]["aliases"] == [str(root / "releases/r1/venv")]


# ---- packages of the application's venv ----

def test_packages_with_requires_python_and_extensions(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "v")
    sp = next((venv / "lib").glob("python*/site-packages"))
    dist = sp / "fastpkg-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fastpkg\nVersion: 2.0\n"
                                   "Requires-Python: >=3.8\n\nRequires-Python: <2\n")
    (sp / "fastpkg").mkdir()
    (sp / "fastpkg" / "_speed.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0" * 100)
    (dist / "RECORD").write_text("fastpkg/_speed.cpython-311-x86_64-linux-gnu.so,,\n")
    (sp / "loose").mkdir()
    (sp / "loose" / "thing.so").write_bytes(b"")
    found = probe.inspect_packages(str(venv), probe.Deadline(30))
    (fast,) = [d for d in found["distributions"] if d["name"] == "fastpkg"]
    assert fast["requires_python"] == ">=3.8"  # from the headers, not the body
    assert fast["extensions"] == ["fastpkg/_speed.cpython-311-x86_64-linux-gnu.so"]
    assert fast["extension_count"] == 1
    assert found["unowned_extensions"] == ["loose/thing.so"]
    assert found["size_bytes"] >= 100


# ---- which python a command runs ----

@pytest.mark.parametrize(("command", "python"), [
    ("/usr/bin/python3 -m http.server 8000", "/usr/bin/python3"),
    ("/srv/app/current/venv/bin/python app.py --port 8000", "/srv/app/current/venv/bin/python"),
    ("/usr/bin/env python3 -u job.py", "python3"),
    ("/usr/bin/env -S PYTHONPATH=/x python3.11 job.py", "python3.11"),
    ("cd /srv/app && /srv/app/venv/bin/python manage.py clearsessions", "/srv/app/venv/bin/python"),
    ("cd /x; python3 job.py >/dev/null 2>&1", "python3"),
    ("/bin/sh -c 'cd /srv && exec /opt/py/bin/python3.12 run.py'", "/opt/py/bin/python3.12"),
    ("nice -n 10 timeout 300 /usr/local/bin/python3.13 x.py", "/usr/local/bin/python3.13"),
    ("LANG=C sudo -u app python2.7 legacy.py", "python2.7"),
    ("/usr/bin/python3.7m x.py", "/usr/bin/python3.7m"),
    ("test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }", None),
    ("/usr/bin/python3-config --cflags", None),
    ("/usr/bin/perl -e 'print 1'", None),
])
def test_python_of_a_command(command: str, python: str | None) -> None:
    assert probe.python_of_argv(probe.split_command(command))[0] == python


def test_a_script_is_judged_by_its_shebang(tmp_path: Path) -> None:
    script = tmp_path / "gunicorn"
    script.write_text("#!/srv/app/venv/bin/python3\nimport sys\n")
    env_script = tmp_path / "tool"
    env_script.write_text("#!/usr/bin/env python3.12\n")
    shell = tmp_path / "run.sh"
    shell.write_text("#!/bin/sh\n")
    assert probe.python_of_argv([str(script), "app:wsgi"]) == (
        "/srv/app/venv/bin/python3", f"shebang of {script}")
    assert probe.python_of_argv([str(env_script)])[0] == "python3.12"
    assert probe.python_of_argv([str(shell)]) == (None, None)


def test_resolve_a_venv_python_to_its_base(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "v")
    venvs = probe.Venvs()
    found = probe.resolve_python(str(venv / "bin" / "python"), venvs, "unit x.service")
    assert found["venv"] == str(venv) and found["exists"]
    assert found["interpreter"] == os.path.realpath(sys.executable)
    assert venvs.entries()[0]["found_via"] == ["unit x.service"]
    missing = probe.resolve_python("/opt/gone/bin/python3", venvs, "cron")
    assert not missing["exists"] and missing["interpreter"] is None


# ---- crontabs ----

SYSTEM_CRONTAB = """\
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
# m h dom mon dow user	command
17 *	* * *	root    cd / && run-parts --report /etc/cron.hourly
*/5 * * * * app /srv/app/venv/bin/python /srv/app/job.py --date=$(date +\\%F) % stdin here
@reboot root /usr/bin/python3 /opt/boot.py
   # indented comment
0 3 * * 1-5 backup
"""


def test_a_system_crontab_has_a_user_field() -> None:
    entries = probe.parse_crontab(SYSTEM_CRONTAB, with_user=True)
    assert entries == [
        (4, "17 * * * *", "root", "cd / && run-parts --report /etc/cron.hourly"),
        (5, "*/5 * * * *", "app", "/srv/app/venv/bin/python /srv/app/job.py --date=$(date +\\%F)"),
        (6, "@reboot", "root", "/usr/bin/python3 /opt/boot.py"),
    ]


def test_a_users_crontab_has_none() -> None:
    text = ("# DO NOT EDIT\nMAILTO=x@example.org\n"
            "*/10 * * * * /home/u/.pyenv/versions/3.8.18/bin/python3.8 r.py\n")
    assert probe.parse_crontab(text, with_user=False) == [
        (3, "*/10 * * * *", None, "/home/u/.pyenv/versions/3.8.18/bin/python3.8 r.py")]


# ---- systemd units ----

def test_unit_exec_lines_with_drop_ins_and_resets() -> None:
    unit = """[Unit]
Description=x
ExecStart=/not/in/service
[Service]
Type=simple
ExecStartPre=-/usr/bin/python3 /srv/pre.py
ExecStart=/srv/app/current/venv/bin/python \\
    /srv/app/app.py --port 8000
; a comment
[Install]
WantedBy=multi-user.target
"""
    override = "[Service]\nExecStart=\nExecStart=/usr/local/bin/python3.13 /srv/app/app.py\n"
    execs = probe.parse_unit([unit])
    assert execs["ExecStart"] == ["/srv/app/current/venv/bin/python      /srv/app/app.py --port 8000"]
    assert execs["ExecStartPre"] == ["-/usr/bin/python3 /srv/pre.py"]
    assert probe.parse_unit([unit, override])["ExecStart"] == [
        "/usr/local/bin/python3.13 /srv/app/app.py"]


def test_a_timer_names_the_service_it_starts() -> None:
    assert probe.timer_service("report.timer", "[Timer]\nOnCalendar=daily\n") == "report.service"
    assert probe.timer_service("x.timer", "[Unit]\nUnit=no.service\n[Timer]\nUnit=job.service\n"
                               ) == "job.service"


def test_units_that_matter_are_enabled_running_or_failed() -> None:
    assert probe.unit_matters({"enabled": "enabled by report.timer", "active": "inactive"})
    assert probe.unit_matters({"enabled": "enabled", "active": "inactive"})
    assert probe.unit_matters({"active": "active", "sub": "running"})
    assert probe.unit_matters({"active": "failed", "sub": "failed"})
    assert not probe.unit_matters({"active": "inactive", "sub": "dead"})
    assert not probe.unit_matters({"enabled": "disabled"})


# ---- os and disk ----

def test_disk_of_a_path_that_does_not_exist_yet_is_its_nearest_parent(tmp_path: Path) -> None:
    found = probe.disk(str(tmp_path / "not" / "yet"), "prefix")
    assert found["measured_at"] == str(tmp_path) and found["free_bytes"] > 0
    assert found["total_bytes"] >= found["free_bytes"] and found["mount"].startswith("/")


def test_main_prints_one_json_document_even_when_it_fails(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_config: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(agents.modules("oxzep7-audit")["cli"], "audit", boom)
    assert probe.main([]) == 1
    assert json.loads(capsys.readouterr().out) == {"probe": 1, "error": "OSError: disk on fire"}
