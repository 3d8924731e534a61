# Run BY the interpreter under test: prints one JSON line saying what works.
# argv: <expected version> <check venv: 0|1> <check ensurepip: 0|1> <hints JSON> <module>...
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile

expected, want_venv, want_pip = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
hints, modules = json.loads(sys.argv[4]), sys.argv[5:]
report = {"version": platform.python_version(), "executable": sys.executable,
          "prefix": sys.prefix, "missing": {}, "unresolved": [], "venv": None}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:  # an ImportError, or an OSError from a missing shared library
        report["missing"][name] = "%s: %s" % (type(exc).__name__, exc)
shared = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
report["shared"] = shared
targets = [sys.executable]
if shared:
    libdir = os.path.join(sys.prefix, "lib")
    lib = sysconfig.get_config_var("LDLIBRARY") or ""
    if os.path.exists(os.path.join(libdir, lib)):
        targets.append(os.path.join(libdir, lib))
for target in targets:
    try:
        out = subprocess.run(["ldd", target], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=60).stdout
    except OSError as exc:
        report["unresolved"].append("%s: ldd failed: %s" % (target, exc))
        continue
    report["unresolved"] += ["%s: %s" % (target, ln.strip()) for ln in out.splitlines() if "not found" in ln]
if want_venv:
    tmp = tempfile.mkdtemp(prefix="oxzep7-verify-")
    try:
        cmd = [sys.executable, "-m", "venv"] + ([] if want_pip else ["--without-pip"]) + [tmp + "/venv"]
        made = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if made.returncode != 0:
            report["venv"] = "python -m venv failed: " + (made.stdout.strip().splitlines() or ["?"])[-1]
        elif want_pip:
            pip = subprocess.run([tmp + "/venv/bin/python", "-m", "pip", "--version"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True)
            if pip.returncode != 0:
                report["venv"] = "ensurepip gave no working pip: " + (pip.stdout.strip().splitlines() or ["?"])[-1]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
problems = []
if report["version"] != expected:
    problems.append("it reports version %s, not %s" % (report["version"], expected))
if report["missing"]:
    problems.append("missing modules: " + ", ".join(
        "%s (usually from %s)" % (name, hints.get(name, "see the build log")) for name in report["missing"]))
if report["unresolved"]:
    problems.append("unresolved libraries: " + "; ".join(report["unresolved"]))
if report["venv"]:
    problems.append(report["venv"])
report["problems"] = problems
report["ok"] = not problems
print(json.dumps(report))
