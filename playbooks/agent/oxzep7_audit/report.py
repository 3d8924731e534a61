"""The whole probe: every part above, one JSON-ready document."""

import sys
import time

from .base import PROBE_FORMAT, Deadline
from .cron import find_cron
from .interpreters import Interpreters, find_interpreters
from .packages import inspect_app
from .system import disk, os_release
from .units import find_units
from .venvs import Venvs
from .versions import interpreter_version


def audit(config):
    started = time.monotonic()
    budget = float(config.get("budget") or 40)
    deadline = Deadline(budget)
    prefix = config.get("prefix") or "/opt/oxzep7/python"
    app_roots = list(config.get("app_roots") or [])
    found, venvs = Interpreters(), Venvs()
    warnings = []

    # the application's venv first, so that it is shown as <root>/current/venv
    app = inspect_app(config["app_venv"], deadline, venvs) if config.get("app_venv") else None
    find_interpreters(found, venvs, prefix, deadline)
    for root in app_roots + list(config.get("paths") or []) + list(config.get("venv_roots") or []):
        venvs.scan(root, deadline)
    units, unit_warning = find_units(venvs)
    if unit_warning:
        warnings.append(unit_warning)
    cron = find_cron(venvs)

    # every interpreter something names is run for its version too, wherever it lives
    for venv in venvs.entries():
        if venv["base_realpath"]:
            found.add(venv["base_realpath"], "venv base", named=False)
    for item in units + cron:
        if item.get("interpreter") and not item.get("venv"):
            found.add(item["interpreter"], "referenced", named=False)
    if config.get("target"):
        found.add(config["target"], "target", named=False)
    interpreters = found.finish()
    running_versions(venvs.entries(), {e["realpath"]: e for e in interpreters})
    if deadline.hit:
        warnings.append(f"the search ran out of its {budget:g} s budget: "
                        "some directories were not searched")
    disks = [disk(prefix, "prefix")] + [disk(root, "application") for root in app_roots]
    return {
        "probe": PROBE_FORMAT,
        "os": os_release(),
        "python": sys.version.split()[0],
        "disk": disks,
        "interpreters": interpreters,
        "venvs": venvs.entries(),
        "units": units,
        "cron": cron,
        "app": app,
        "warnings": warnings,
        "seconds": round(time.monotonic() - started, 3),
    }


def running_versions(venvs, by_real):
    """What each venv's bin/python runs now (a copied interpreter is run itself)."""
    for venv in venvs:
        real = venv["python_realpath"]
        known = by_real.get(real) if real else None
        if known is not None:
            venv["running_version"] = known.get("version")
        elif real:
            venv["running_version"] = interpreter_version(venv["python"]).get("version")
        else:
            venv["running_version"] = None
