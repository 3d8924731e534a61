"""prune: releases beyond a count, and interpreter trees no release of any app uses any more."""

import os
import shutil

from oxzep7_deploy.rules import prefix_problem

from .context import ENV_FORMAT, read_envs
from .files import read_json, write_json_atomic
from .state import age, history, load_state, save_state

WHEELS_DIR = ".oxzep7-wheels"  # <root>/.oxzep7-wheels/<release>: steps/wheels.py wheels_dir()


def in_use_prefixes(paths, exclude_app_releases):
    """Interpreter trees that some release of any app on this host still uses."""
    used = set()
    try:
        apps = os.listdir(paths.base)
    except OSError:
        apps = []
    for app in apps:
        other = read_json(os.path.join(paths.base, app, "state.json")) if app != paths.app else None
        releases = exclude_app_releases if app == paths.app else (other or {}).get("releases", {})
        for rel in releases.values():
            prefix = (rel.get("interpreter") or {}).get("prefix")
            if prefix:
                used.add(os.path.normpath(prefix))
    return used


def removable_prefix(prefix):
    """A tree the interpreter step installed, at a prefix the shared rule allows (the same rule
    as the spec check's: oxzep7_deploy/rules.py prefix_problem)."""
    if prefix_problem(prefix) is not None:
        return False
    # only a tree the interpreter step installed carries this marker: never anything else
    return os.path.isfile(os.path.join(os.path.normpath(prefix), ".oxzep7-artifact.json"))


def prune(paths, keep, protect=None):
    """Remove releases beyond `keep` (never current, previous, last good, live or the dead-man's),
    and interpreter trees no release of any app uses any more; the caller holds the guard."""
    keep = max(2, keep)
    st, _ = load_state(paths)
    protected = [r for r in (st["current"], st["previous"], st["last_good"]) if r]
    protected += [r for r in protect or [] if r in st["releases"]]
    protected += [r for r, rel in st["releases"].items() if rel["status"] == "live"]
    if st.get("deadman"):
        protected += [st["deadman"].get("from"), st["deadman"].get("to")]
    protected = [r for r in dict.fromkeys(protected) if r]
    kept = list(protected)
    # the rest by worth: releases one could go back to (good, prepared) before bad or failed
    # ones, newest first within each
    usable_first = sorted(
        st["releases"],
        key=lambda r: (st["releases"][r]["status"] not in ("bad", "failed"), age(st, r)),
        reverse=True,
    )
    for rid in usable_first:
        if len(kept) >= keep:
            break
        if rid not in kept:
            kept.append(rid)
    removed = [r for r in st["releases"] if r not in kept]
    gone = {r: st["releases"][r] for r in removed}
    for rid in removed:
        rel = st["releases"].pop(rid)
        releases_dir = os.path.join(st["root"], "releases")
        if os.path.dirname(os.path.normpath(rel["path"])) == os.path.normpath(releases_dir):
            shutil.rmtree(rel["path"], ignore_errors=True)
        # the wheel set the release was installed from (application.wheels: once-per-platform)
        shutil.rmtree(os.path.join(st["root"], WHEELS_DIR, rid), ignore_errors=True)
    used = in_use_prefixes(paths, st["releases"])
    trees = []
    for rel in gone.values():
        interp = rel.get("interpreter") or {}
        prefix = interp.get("prefix")
        if (
            interp.get("managed")
            and prefix
            and os.path.normpath(prefix) not in used
            and removable_prefix(prefix)
            and prefix not in trees
        ):
            shutil.rmtree(prefix, ignore_errors=True)
            trees.append(prefix)
    if removed:
        history(st, "prune", detail="removed {}".format(", ".join(sorted(removed))))
        releases, legacy = read_envs(paths.env)
        if releases and not legacy:
            kept_envs = {r: v for r, v in releases.items() if r in st["releases"]}
            write_json_atomic(paths.env, {"format": ENV_FORMAT, "releases": kept_envs})
    save_state(paths, st)
    return {"changed": bool(removed), "removed": sorted(removed), "kept": kept, "interpreters_removed": trees}
