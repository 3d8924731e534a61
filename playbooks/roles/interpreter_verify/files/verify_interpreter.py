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


def run(argv):
    """rc and the last line of output of argv."""
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc), ""
    lines = done.stdout.strip().splitlines()
    return done.returncode, lines[-1] if lines else "?", done.stdout


expected, want_venv, want_pip = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
hints, modules = json.loads(sys.argv[4]), sys.argv[5:]
report = {"version": platform.python_version(), "executable": sys.executable,
          "prefix": sys.prefix, "missing": {}, "unresolved": [], "venv": None}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:  # an ImportError, or an OSError from a missing shared library
        report["missing"][name] = f"{type(exc).__name__}: {exc}"

report["shared"] = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
targets = [sys.executable]
libpython = os.path.join(sys.prefix, "lib", sysconfig.get_config_var("LDLIBRARY") or "-")
if report["shared"] and os.path.exists(libpython):
    targets.append(libpython)
for target in targets:
    rc, last, out = run(["ldd", target])
    found = [f"{target}: {ln.strip()}" for ln in out.splitlines() if "not found" in ln]
    report["unresolved"] += found if out else [f"{target}: ldd failed: {last}"]

if want_venv:
    tmp = tempfile.mkdtemp(prefix="oxzep7-verify-")
    try:
        venv = os.path.join(tmp, "venv")
        rc, last, _ = run([sys.executable, "-m", "venv", *([] if want_pip else ["--without-pip"]), venv])
        if rc != 0:
            report["venv"] = f"python -m venv failed: {last}"
        elif want_pip:
            rc, last, _ = run([os.path.join(venv, "bin", "python"), "-m", "pip", "--version"])
            if rc != 0:
                report["venv"] = f"ensurepip gave no working pip: {last}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

problems = []
if report["version"] != expected:
    problems.append(f"it reports version {report['version']}, not {expected}")
if report["missing"]:
    named = [f"{name} (usually from {hints[name]})" if name in hints else f"{name} (see the build log)"
             for name in report["missing"]]
    problems.append("missing modules: " + ", ".join(named))
if report["unresolved"]:
    problems.append("unresolved libraries: " + "; ".join(report["unresolved"]))
if report["venv"]:
    problems.append(report["venv"])
report["problems"] = problems
report["ok"] = not problems
print(json.dumps(report))
