"""What an upgrade to a spec's target would change on one host, and the risks seen beforehand.

Judged on the controller from the probe's facts about `<root>/current/venv`: the version it
runs, each installed distribution's `Requires-Python`, and its compiled extensions (a module
built for one CPython minor version must be rebuilt, or come as a wheel, for another).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from oxzep7_deploy.audit.eol import branch_of, eol_status
from oxzep7_deploy.audit.model import Target
from oxzep7_deploy.audit.requires_python import InvalidSpecifier, python_satisfies

MiB = 1024 * 1024
INTERPRETER_ROOM = 512 * MiB  # a CPython tree, its archive and a venv's first packages
VENV_MARGIN = 64 * MiB

_TAGGED = re.compile(r"\.cpython-(\d)(\d+)[a-z]*(-[^.]*)?\.so$")
_OTHER_IMPL = re.compile(r"\.(pypy\d*|graalpy\d*)[-\w]*\.so$")
_LIBRARY = re.compile(r"(^|/)lib[^/]*\.so(\.[\d.]+)?$|\.so\.[\d.]+$")


def cpython_tag(version: str) -> str:
    """`cpython-313` for 3.13.5: the tag in the file names of extensions built for it."""
    branch = branch_of(version) or "0.0"
    major, minor = branch.split(".")
    return f"cpython-{major}{minor}"


def classify_extension(relpath: str, target_version: str) -> str:
    """What a `.so` under site-packages means for the target.

    `rebuild` (built for another CPython, or untagged), `ok` (already for the target, or the
    stable ABI `abi3`), `library` (a bundled shared library, e.g. numpy.libs/libopenblas.so),
    or `other-implementation` (PyPy, GraalPy).
    """
    name = relpath.rsplit("/", 1)[-1]
    if name.endswith(".abi3.so"):
        return "ok"
    tagged = _TAGGED.search(name)
    if tagged:
        return "ok" if f"cpython-{tagged.group(1)}{tagged.group(2)}" == cpython_tag(
            target_version) else "rebuild"
    if _OTHER_IMPL.search(name):
        return "other-implementation"
    if _LIBRARY.search(relpath) or ".libs/" in relpath:
        return "library"
    return "rebuild"  # an untagged extension module: built for one interpreter, tagged or not


def _risk(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "message": message, **extra}


def requires_python_risks(dists: Sequence[Mapping[str, Any]], target_version: str
                          ) -> tuple[list[dict[str, Any]], list[str]]:
    """Distributions whose Requires-Python excludes the target; notes for unreadable ones."""
    risks, notes = [], []
    for dist in dists:
        spec = dist.get("requires_python")
        if not spec:
            continue
        name, version = dist.get("name"), dist.get("version")
        try:
            allowed = python_satisfies(spec, target_version)
        except InvalidSpecifier:
            notes.append(f"{name} {version}: Requires-Python {spec!r} is not a valid specifier "
                         "(pip ignores it)")
            continue
        if not allowed:
            risks.append(_risk(
                "requires-python",
                f"{name} {version} declares Requires-Python {spec}, which excludes "
                f"{target_version}: pin a release that supports it",
                package=name, version=version, requires_python=spec))
    return risks, notes


def extension_risks(dists: Sequence[Mapping[str, Any]], unowned: Sequence[str],
                    target_version: str) -> list[dict[str, Any]]:
    """Distributions with compiled extensions that will not load on the target as they are."""
    risks = []
    tag = cpython_tag(target_version)
    groups: list[tuple[str, str | None, list[str], int]] = [
        (str(d.get("name")), d.get("version"), list(d.get("extensions") or []),
         int(d.get("extension_count") or 0)) for d in dists]
    by_top: dict[str, list[str]] = {}
    for rel in unowned:
        by_top.setdefault(rel.split("/", 1)[0], []).append(rel)
    groups += [(f"{top} (no metadata)", None, files, len(files)) for top, files in by_top.items()]
    for name, version, files, count in groups:
        rebuild = [f for f in files if classify_extension(f, target_version) == "rebuild"]
        if not rebuild:
            continue
        built_for = sorted({m.group(0) for f in rebuild if (m := re.search(r"cpython-\d+", f))})
        was = ", ".join(built_for) or "an untagged build"
        risks.append(_risk(
            "c-extension",
            f"{name}{' ' + version if version else ''}: {len(rebuild)} compiled extension(s) "
            f"built for {was}; the target needs a {tag} wheel or a build with a compiler",
            package=name, version=version, files=rebuild[:5], count=len(rebuild),
            total_extensions=count))
    return risks


def disk_risks(disks: Sequence[Mapping[str, Any]], venv_bytes: int) -> list[dict[str, Any]]:
    risks = []
    for d in disks:
        free = d.get("free_bytes")
        if free is None:
            continue
        need = INTERPRETER_ROOM if d.get("role") == "prefix" else venv_bytes + VENV_MARGIN
        if free < need:
            risks.append(_risk(
                "disk",
                f"{d.get('mount')} ({d.get('role')} {d.get('path')}) has {free // MiB} MiB free; "
                f"about {need // MiB} MiB are needed",
                path=d.get("path"), free_bytes=free, needed_bytes=need))
    return risks


def _from(venv: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not venv:
        return None
    return {"version": venv.get("running_version") or venv.get("version"),
            "interpreter": venv.get("base"), "venv": venv.get("path"),
            "broken": bool(venv.get("broken"))}


def _target_on_host(interpreters: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether the target executable is already on the host, and what version it says it is."""
    for item in interpreters:
        if "target" in (item.get("sources") or ()):
            return {"present": True, "found_version": item.get("version")}
    return {"present": False, "found_version": None}


def plan_upgrade(host: Mapping[str, Any], target: Target, on: dt.date) -> dict[str, Any]:
    """From which version to which, and the risks, for one audited host."""
    app = host.get("app_probe") or {}
    venv = next((v for v in host.get("venvs", ()) if v.get("realpath") == app.get("realpath")),
                None) if app.get("exists") else None
    current = _from(venv)
    present = _target_on_host(host.get("interpreters", ()))
    risks: list[dict[str, Any]] = []
    notes: list[str] = []
    if current is None:
        change = f"none -> {target.version}"
        notes.append(f"no venv at {target.venv}: nothing runs there yet (a first release)")
    elif current["version"] == target.version:
        change = f"none: already on {target.version}"
    else:
        change = f"{current['version'] or 'unknown'} -> {target.version}"
    if current and current["broken"]:
        risks.append(_risk("broken-venv", f"{target.venv} is broken today: "
                           + "; ".join(venv.get("problems", ()) if venv else ())))
    if present["present"] and present["found_version"] not in (None, target.version):
        risks.append(_risk("target-mismatch", f"{target.executable} exists but is Python "
                           f"{present['found_version']}, not {target.version}"))
    target_eol = eol_status(target.version, on)
    if target_eol.eol:
        risks.append(_risk("target-eol", f"Python {target_eol.branch} is past its end of life "
                           f"({target_eol.end_of_life}) on {on}"))
    dists = app.get("distributions") or []
    rp_risks, rp_notes = requires_python_risks(dists, target.version)
    risks += rp_risks
    notes += rp_notes
    risks += extension_risks(dists, app.get("unowned_extensions") or [], target.version)
    risks += disk_risks(host.get("disk", ()), int(app.get("size_bytes") or 0))
    return {"app": target.app, "venv": target.venv, "from": current,
            "to": {"version": target.version, "interpreter": target.executable, **present},
            "change": change, "packages": len(dists), "risks": risks, "notes": notes}
