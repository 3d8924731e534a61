"""End to end on the real fleet: `oxzep7-deploy audit` finds planted cases, changes nothing, and
reports a frozen host as unreachable while the others complete.

Planted on h1 through `podman exec` before any audit (PLANT below):
  - a venv built on a copy of the system interpreter that was then removed (broken);
  - the app's current venv on the system python, with packages whose metadata says
    Requires-Python <3.12 and a compiled extension built for CPython 3.11;
  - a unit on the system python (pyhttp.service), one on the app's venv (app.service), and a
    service only an enabled timer starts (report.service, `env python3`);
  - a fake pyenv CPython 3.8.18 (the hosts have no network to build one: a script that answers
    the version probe as 3.8.18 and runs the system python otherwise) run by deploy's crontab;
  - a cron.d entry running the app's venv, and a venv only `--path /data` finds;
  - fake interpreters in /usr/local/bin (3.12.7), our prefix /opt/oxzep7 (3.13.5) and a uv
    install (3.10.15: end of life since 2026-10-31), and /etc/alternatives/python.
h2 is a plain host; h3 is frozen (`fleet.pause`) for the unreachable test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.harness import Fleet

pytestmark = pytest.mark.e2e

PLANT = r"""set -e
# a venv built on an interpreter that was later removed
mkdir -p /opt/tmpy/bin && cp /usr/bin/python3.11 /opt/tmpy/bin/python3.11
/opt/tmpy/bin/python3.11 -m venv --without-pip /srv/app/releases/r0/venv
rm -rf /opt/tmpy
# the app's current venv, on the system python, with packages
python3 -m venv --without-pip /srv/app/releases/r1/venv
ln -sfn releases/r1 /srv/app/current
SP=/srv/app/releases/r1/venv/lib/python3.11/site-packages
dist() { # name version requires-python files...
  local d=$SP/$1-$2.dist-info; mkdir -p "$d"
  { echo "Metadata-Version: 2.1"; echo "Name: $1"; echo "Version: $2"
    [ -n "$3" ] && echo "Requires-Python: $3"
    echo; echo "Requires-Python: <2 (in the body: ignored)"; } > "$d/METADATA"
  shift 3; : > "$d/RECORD"
  for f in "$@"; do mkdir -p "$SP/$(dirname "$f")"; : > "$SP/$f"; echo "$f,," >> "$d/RECORD"; done
}
dist oldpkg 1.0 ">=3.6, <3.12" oldpkg/__init__.py
dist fastpkg 2.0 ">=3.8" fastpkg/__init__.py fastpkg/_speedups.cpython-311-x86_64-linux-gnu.so
dist stablepkg 1.1 ">=3.7" stablepkg/_native.abi3.so
dist okpkg 3.0 ">=3.8" okpkg/__init__.py
# a unit on the system python, and one on the app's venv
cat > /etc/systemd/system/pyhttp.service <<'U'
[Unit]
Description=a unit on the system python
[Service]
ExecStart=/usr/bin/python3 -m http.server 8123 --bind 127.0.0.1
[Install]
WantedBy=multi-user.target
U
cat > /etc/systemd/system/app.service <<'U'
[Service]
ExecStart=/srv/app/current/venv/bin/python -c "import time; time.sleep(10**9)"
[Install]
WantedBy=multi-user.target
U
cat > /etc/systemd/system/report.service <<'U'
[Service]
Type=oneshot
ExecStart=/usr/bin/env python3 -c "print('daily report')"
U
cat > /etc/systemd/system/report.timer <<'U'
[Timer]
OnCalendar=daily
[Install]
WantedBy=timers.target
U
systemctl daemon-reload
systemctl enable --now pyhttp.service app.service 2>/dev/null
systemctl enable report.timer 2>/dev/null
# a fake pyenv CPython 3.8.18 (no network to build one): answers the version probe as 3.8.18
P=/home/deploy/.pyenv/versions/3.8.18/bin
mkdir -p $P
cat > $P/python3.8 <<'S'
#!/bin/sh
# stands in for a pyenv-built CPython 3.8.18
for a in "$@"; do
  case $a in
    -c) echo "3.8.18 final 0 cpython"; exit 0 ;;
    --version|-V) echo "Python 3.8.18"; exit 0 ;;
  esac
done
exec /usr/bin/python3 "$@"
S
chmod 755 $P/python3.8; ln -sf python3.8 $P/python3; ln -sf python3.8 $P/python
chown -R deploy:deploy /home/deploy/.pyenv
printf '# m h dom mon dow command\n*/10 * * * * %s/python3.8 /home/deploy/report.py\n' $P \
  | crontab -u deploy -
printf 'SHELL=/bin/sh\n0 3 * * * root cd /srv/app && %s -m compileall -q . %% stdin\n' \
  /srv/app/current/venv/bin/python > /etc/cron.d/app-job
# a venv somewhere only --path finds
python3 -m venv --without-pip /data/tools/venv
# interpreters in the other usual places, as fakes that answer the version probe
fake() {  # fake VERSION PATH
  mkdir -p "$(dirname "$2")"
  { echo '#!/bin/sh'
    echo 'for a in "$@"; do [ "$a" = -c ] && echo "'"$1"' final 0 cpython" && exit 0; done'
    echo 'exec /usr/bin/python3 "$@"'; } > "$2"
  chmod 755 "$2"
}
fake 3.12.7 /usr/local/bin/python3.12
fake 3.13.5 /opt/oxzep7/python/3.13.5/bin/python3.13
fake 3.10.15 /root/.local/share/uv/python/cpython-3.10.15-linux-x86_64-gnu/bin/python3.10
ln -sfn /usr/bin/python3.11 /etc/alternatives/python
"""
PYENV38 = "/home/deploy/.pyenv/versions/3.8.18/bin/python3.8"
SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: app-py313
targets: fleet
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: app, root: /srv/app}
"""
# what the audit must leave exactly as it was
WATCHED = ("/srv/app/releases/r0/venv/pyvenv.cfg", "/srv/app/releases/r1/venv/pyvenv.cfg",
           "/srv/app/releases/r1/venv/lib/python3.11/site-packages/oldpkg-1.0.dist-info/METADATA",
           "/etc/systemd/system/pyhttp.service", "/etc/systemd/system/app.service",
           "/etc/cron.d/app-job", "/var/spool/cron/crontabs/deploy", PYENV38,
           "/usr/bin/python3.11", "/data/tools/venv/pyvenv.cfg")
SEARCHED = "/etc /srv /opt /home /root /usr /var/spool /var/lib/oxzep7 /data"



@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    """This module's own 3 hosts, named apart from any other session's (parallel runs are safe)."""
    fleet = fleet_factory(3)
    fleet.run_on("h1", ["sh", "-c", PLANT], check=True, timeout=300)
    return fleet

@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit")
    (path / "spec.yaml").write_text(SPEC)
    return path


def audit(fleet: Fleet, work: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """The real CLI in a subprocess, as an operator runs it."""
    env = {**fleet.ansible_env(work), "OXZEP7_RECORDS": str(work / "records")}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "oxzep7_deploy", "audit", *args,
                           "-i", str(fleet.inventory)], capture_output=True, text=True,
                          env=env, cwd=work, timeout=300)
    return proc, time.monotonic() - started


def fingerprint(fleet: Fleet) -> str:
    return fleet.sh("h1", "sha256sum " + " ".join(WATCHED))


def changed_since(fleet: Fleet, host: str) -> list[str]:
    """Files and folders modified after the stamp, but Ansible's own temporary folder."""
    out = fleet.sh(host, f"find {SEARCHED} -xdev -newer /run/oxz-audit-stamp "
                         "-not -path '*/.ansible/tmp*' 2>/dev/null; true")
    return [line for line in out.splitlines() if line and not line.endswith("/.ansible")]


def last_run_stats(work: Path) -> dict[str, Any]:
    """Ansible's own end-of-play counters for the last audit (from the kept artifacts)."""
    runs = sorted((work / "records" / "audits").iterdir())
    for event in sorted((runs[-1] / "artifacts" / "audit" / "job_events").glob("*.json")):
        data = json.loads(event.read_text())
        if data.get("event") == "playbook_on_stats":
            return dict(data["event_data"])
    raise AssertionError("no playbook_on_stats event in the audit's artifacts")


WARM_UP = """
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.script: /bin/true
      become: true
"""


@pytest.fixture(scope="module")
def planted_report(fleet: Fleet, work: Path) -> dict[str, Any]:
    # Ansible's first `script` task on a host makes ~/.ansible/tmp (its temporary copies go
    # there, and are removed): made before the stamp, so that what the audit itself writes
    # (nothing) is what the stamp sees
    fleet.run_playbook(work / "warm-up", WARM_UP)
    before = fingerprint(fleet)
    for host in fleet.hosts:
        fleet.sh(host, "touch /run/oxz-audit-stamp; sleep 1")
    proc, seconds = audit(fleet, work, str(work / "spec.yaml"), "--path", "/data", "--json")
    print(f"\naudit of {len(fleet.hosts)} hosts with a spec: {seconds:.1f} s")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    doc["_fingerprint_before"] = before
    return doc


def test_every_planted_case_is_in_the_json(planted_report: dict[str, Any]) -> None:
    doc = planted_report
    assert doc["unreachable"] == [] and doc["failed"] == [] and doc["summary"]["complete"]
    h1 = doc["hosts"]["h1"]
    assert (h1["os"]["id"], h1["os"]["release"], h1["os"]["arch"]) == ("debian", "12", "x86_64")
    interpreters = {i["realpath"]: i for i in h1["interpreters"]}
    system = interpreters["/usr/bin/python3.11"]
    assert system["version"] == "3.11.2" and system["eol"] is False and "system" in system["sources"]
    fake = interpreters[PYENV38]
    assert fake["version"] == "3.8.18" and fake["eol"] is True and fake["eol_date"] == "2024-10-07"
    assert "pyenv" in fake["sources"]
    assert "alternatives" in system["sources"] and "/etc/alternatives/python" in system["paths"]
    others = {i["path"]: (i["version"], i["sources"], i["eol"]) for i in h1["interpreters"]}
    assert others["/usr/local/bin/python3.12"] == ("3.12.7", ["local"], False)
    assert others["/opt/oxzep7/python/3.13.5/bin/python3.13"] == ("3.13.5", ["oxzep7"], False)
    uv = "/root/.local/share/uv/python/cpython-3.10.15-linux-x86_64-gnu/bin/python3.10"
    assert others[uv] == ("3.10.15", ["uv"], doc["audit_date"] > "2026-10-31")

    venvs = {v["path"]: v for v in h1["venvs"]}
    broken = venvs["/srv/app/releases/r0/venv"]
    assert broken["broken"] is True and broken["base"] == "/opt/tmpy/bin/python3.11"
    assert broken["problems"] == ["the interpreter it was built on is gone: /opt/tmpy/bin/python3.11"]
    current = venvs["/srv/app/current/venv"]
    assert current["broken"] is False and current["aliases"] == ["/srv/app/releases/r1/venv"]
    assert current["base"] == "/usr/bin/python3.11" and current["version"] == "3.11.2"
    assert venvs["/data/tools/venv"]["found_via"] == ["/data"]

    units = {u["unit"]: u for u in h1["units"]}
    assert units["pyhttp.service"]["python"] == "/usr/bin/python3"
    assert units["pyhttp.service"]["interpreter"] == "/usr/bin/python3.11"
    assert units["pyhttp.service"]["version"] == "3.11.2"
    assert (units["pyhttp.service"]["enabled"], units["pyhttp.service"]["sub"]) == ("enabled", "running")
    report = units["report.service"]
    assert (report["enabled"], report["python"], report["how"]) == (
        "enabled by report.timer", "python3", "env")
    assert report["interpreter"] == "/usr/bin/python3.11" and report["version"] == "3.11.2"
    assert units["app.service"]["venv"] == "/srv/app/current/venv"
    assert units["app.service"]["interpreter"] == "/usr/bin/python3.11"

    cron = {(c["file"], c["user"]): c for c in h1["cron"]}
    job = cron[("/var/spool/cron/crontabs/deploy", "deploy")]
    assert job["python"] == PYENV38 and job["version"] == "3.8.18" and job["eol"] is True
    assert cron[("/etc/cron.d/app-job", "root")]["venv"] == "/srv/app/current/venv"

    prefix, app_disk = h1["disk"]
    assert (prefix["path"], prefix["role"]) == ("/opt/oxzep7/python/3.13.5", "prefix")
    assert app_disk["path"] == "/srv/app" and app_disk["free_bytes"] > 0


def test_the_upgrade_and_its_risks_per_host(planted_report: dict[str, Any]) -> None:
    up = planted_report["hosts"]["h1"]["upgrade"]
    assert up["change"] == "3.11.2 -> 3.13.5" and up["to"]["present"] is False
    risks = {(r["kind"], r.get("package")) for r in up["risks"]}
    assert risks == {("requires-python", "oldpkg"), ("c-extension", "fastpkg")}
    assert planted_report["hosts"]["h2"]["upgrade"]["change"] == "none -> 3.13.5"
    s = planted_report["summary"]
    eol_expected = 2 if planted_report["audit_date"] > "2026-10-31" else 1  # 3.8, and 3.10 after
    assert s["eol_interpreters"] == eol_expected and s["broken_venvs"] == 1
    assert s["hosts_at_risk"] == ["h1"]


def test_the_audit_changed_nothing(fleet: Fleet, work: Path, planted_report: dict[str, Any]) -> None:
    stats = last_run_stats(work)
    assert stats["changed"] == {} and stats["failures"] == {} and stats["dark"] == {}
    assert set(stats["ok"]) == {"h1", "h2", "h3"}
    assert fingerprint(fleet) == planted_report["_fingerprint_before"]
    for host in fleet.hosts:
        assert changed_since(fleet, host) == [], host
    assert all(not h["warnings"] for h in planted_report["hosts"].values())


def test_the_table_shows_the_same(fleet: Fleet, work: Path) -> None:
    proc, _ = audit(fleet, work, str(work / "spec.yaml"), "--path", "/data")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()

    def row(*cells: str) -> bool:
        return any(all(c in line for c in cells) for line in lines)

    assert row("interpreter", PYENV38.rsplit("/", 1)[0], "pyenv", "3.8.18", "EOL since 2024-10-07")
    assert row("interpreter", "/usr/bin/python3", "system", "3.11.2", "supported until 2027-10-31")
    assert row("venv", "/srv/app/releases/r0/venv", "/opt/tmpy/bin/python3.11", "BROKEN")
    assert row("unit", "pyhttp.service (enabled, running)", "/usr/bin/python3", "3.11.2")
    assert row("cron", "deploy: */10 * * * *", "3.8.18", "EOL since 2024-10-07")
    assert row("upgrade", "app (/srv/app/current/venv)", "3.11.2 -> 3.13.5")
    assert row("risk", "requires-python", "oldpkg 1.0")
    assert row("risk", "c-extension", "fastpkg 2.0")
    assert "auditing 3 hosts (read-only)" in proc.stderr


def test_a_frozen_host_is_unreachable_and_the_others_complete(fleet: Fleet, work: Path,
                                                              planted_report: dict[str, Any]) -> None:
    fleet.pause("h3")
    try:
        proc, seconds = audit(fleet, work, "--timeout", "5", "--json")
    finally:
        fleet.unpause("h3")
    print(f"\naudit with h3 frozen: {seconds:.1f} s")
    assert proc.returncode == 1, proc.stderr  # the report is not the whole fleet
    assert "not audited: h3" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["unreachable"] == ["h3"] and doc["hosts"]["h3"]["status"] == "unreachable"
    assert doc["hosts"]["h3"]["message"]
    assert [doc["hosts"][h]["status"] for h in ("h1", "h2")] == ["ok", "ok"]
    assert doc["summary"]["complete"] is False and doc["summary"]["audited"] == 2
    assert any(i["version"] == "3.8.18" for i in doc["hosts"]["h1"]["interpreters"])
    assert seconds < 60
