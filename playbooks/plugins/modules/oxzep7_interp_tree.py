#!/usr/bin/python
"""Install an interpreter tree into its prefix atomically; the marker file says what is there."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule

# The prefix rule and sha256 are the controller's own (oxzep7_deploy/rules.py): Ansible ships
# the collection's plugins/module_utils/oxzep7_rules.py, a symlink to it, with this module.
from ansible_collections.oxzep7.deploy.plugins.module_utils.oxzep7_rules import (
    prefix_problem,
    sha256_file,
)

DOCUMENTATION = r"""
module: oxzep7_interp_tree
short_description: Stage, commit and probe an interpreter tree under its own prefix
description:
  - C(probe) reads the marker C(<prefix>/.oxzep7-artifact.json) and says whether the prefix is
    ours, someone else's, or absent, and whether the tree with the asked key is in place and its
    interpreter starts (C(current)). Read-only.
  - C(staged) unpacks an archive (sha256 verified first) or copies a directory into a stage
    directory beside the prefix (same filesystem), so the prefix is never half-written.
    A tree under a single top-level directory (python-build-standalone C(install_only)) is
    unwrapped. Nothing is done when the marker already has the asked key and the interpreter
    starts; a marked tree whose interpreter does not start is replaced.
  - C(present) writes the marker into the stage, swaps the stage into place by rename(2),
    checks that the interpreter starts at its final path (and, for a shared build, that
    ldd finds every library), and puts the previous tree back if it does not.
  - C(discarded) removes a stage left by a failed attempt.
  - Refuses what the spec check refuses (oxzep7_deploy/rules.py, prefix_problem) - C(/), any
    prefix under C(/usr) but C(/usr/local/<dir>), under C(/bin), C(/sbin) or C(/lib*), any C(..),
    prefixes less than two levels deep; and replacing a directory this tool did not install.
options:
  state: {type: str, required: true, choices: [probe, staged, present, discarded]}
  prefix: {type: path, required: true}
  key: {type: str, description: the artifact key the marker must hold}
  archive: {type: path, description: archive on the host (staged)}
  sha256: {type: str, description: expected sha256 of the archive (staged)}
  tree: {type: path, description: directory on the host to copy instead of an archive (staged)}
  marker: {type: dict, description: what the marker records (present)}
  executable: {type: str, description: interpreter file name under bin/, e.g. python3.13}
  version: {type: str, description: the version the interpreter must print (present)}
  need_bytes: {type: int, description: "the tree's size unpacked (probe): when the filesystem of
    the prefix's parent has less free, fail before anything is shipped; 0: no check"}
"""

MARKER = ".oxzep7-artifact.json"
VERSION_CODE = "import platform; print(platform.python_version())"


def last_line(text: str, rc: int) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else f"rc {rc}"


def read_marker(prefix: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(prefix, MARKER)) as fh:
            marker: dict[str, Any] | None = json.load(fh)
            return marker
    except (OSError, ValueError):
        return None


def starts(module: AnsibleModule, prefix: str) -> bool:
    """Whether the interpreter under `prefix` starts (a marker alone proves nothing: the tree
    may have been removed or damaged by hand since)."""
    exe = module.params["executable"]
    if not exe:
        return True
    path = os.path.join(prefix, "bin", exe)
    if not os.path.exists(path):
        return False
    rc: int
    try:  # a file that is no program (damaged, not executable) is no interpreter: not an error
        rc, _out, _err = module.run_command([path, "-c", "pass"], handle_exceptions=False,
                                            environ_update={"LD_LIBRARY_PATH": ""})
    except OSError:
        return False
    return rc == 0


def installed(module: AnsibleModule, prefix: str, key: str | None,
              marker: dict[str, Any] | None) -> bool:
    """The tree with `key` is in place and its interpreter starts: nothing to do."""
    return bool(marker and key and marker.get("key") == key and starts(module, prefix))


def stage_path(prefix: str, key: str | None) -> str:
    parent, name = os.path.split(os.path.normpath(prefix))
    return os.path.join(parent, f".{name}.oxzep7-stage-{(key or 'nokey')[:16]}")


def remove_tree(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def free_bytes(path: str) -> tuple[str, int]:
    """(the nearest existing directory at or above `path`, bytes free there for root)."""
    where = os.path.normpath(path)
    while not os.path.isdir(where):
        where = os.path.dirname(where)
    st = os.statvfs(where)
    return where, st.f_bavail * st.f_frsize


def mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


def check_room(module: AnsibleModule, prefix: str, need: int) -> None:
    """Refuse when the tree (`need` bytes unpacked, staged beside the prefix) cannot fit."""
    where, free = free_bytes(os.path.dirname(os.path.normpath(prefix)))
    if need and free < need:
        module.fail_json(
            msg=f"not enough space for the interpreter tree at {prefix}: it needs {mb(need)} "
                f"unpacked, {where} has {mb(free)} free; nothing was shipped or installed: free "
                f"{mb(need - free)} there (or choose another prefix) and run again",
            no_space=True, path=where, needed_bytes=need, free_bytes=free)


def probe(module: AnsibleModule, prefix: str, key: str | None) -> dict[str, Any]:
    marker = read_marker(prefix)
    if not installed(module, prefix, key, marker) and not module.check_mode:
        check_room(module, prefix, module.params["need_bytes"] or 0)
    exists = os.path.lexists(prefix)
    exe = module.params["executable"]
    return dict(
        changed=False,
        exists=exists,
        marker=marker,
        foreign=exists and marker is None,
        current=installed(module, prefix, key, marker),
        executable_exists=bool(exe) and os.path.exists(os.path.join(prefix, "bin", exe)),
        # only a tree of ours is run: never a program someone else put at the prefix
        starts=exists and marker is not None and starts(module, prefix),
    )


def make_parents(path: str) -> list[str]:
    """Create the missing parents of `path`; return the ones created, outermost first."""
    created = []
    parent = os.path.dirname(path)
    while not os.path.isdir(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(created):
        os.mkdir(directory, 0o755)
    return list(reversed(created))


def unwrap(unpacked: str, executable: str | None) -> str | None:
    """The tree's root: the unpacked dir, or its one top-level dir (python-build-standalone)."""
    if os.path.isdir(os.path.join(unpacked, "bin")):
        return unpacked
    entries = os.listdir(unpacked)
    if len(entries) == 1 and os.path.isdir(os.path.join(unpacked, entries[0], "bin")):
        return os.path.join(unpacked, entries[0])
    return None


def fail_unpack(  # type: ignore[misc]  # fail_json exits; mypy sees AnsibleModule as Any
        module: AnsibleModule, stage: str, created: list[str], msg: str, **extra: Any) -> NoReturn:
    remove_tree(stage)
    remove_tree(stage + ".unpack")
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(directory)
    module.fail_json(msg=msg, stage=stage, **extra)


def staged(module: AnsibleModule, prefix: str, key: str | None) -> dict[str, Any]:
    params = module.params
    marker = read_marker(prefix)
    if installed(module, prefix, key, marker):
        return dict(changed=False, current=True, stage=None)
    if os.path.lexists(prefix) and marker is None:
        module.fail_json(msg=f"{prefix} exists and was not installed by oxzep7-deploy: "
                             "refusing to replace it (move it away or choose another prefix)")
    archive, tree = params["archive"], params["tree"]
    if bool(archive) == bool(tree):
        module.fail_json(msg="staged needs exactly one of archive or tree")
    if archive:
        if not os.path.isfile(archive):
            module.fail_json(msg=f"archive {archive} is not on the host")
        actual = sha256_file(archive)
        if params["sha256"] and actual != params["sha256"].lower():
            module.fail_json(msg=f"checksum mismatch on arrival for {archive}: "
                                 f"expected sha256 {params['sha256']}, got {actual}", actual=actual)
    stage = stage_path(prefix, key)
    if module.check_mode:
        return dict(changed=True, current=False, stage=stage)
    remove_tree(stage)
    remove_tree(stage + ".unpack")
    created = make_parents(prefix)
    unpacked = stage + ".unpack"
    os.mkdir(unpacked, 0o755)
    if archive:
        cmd = ["tar", "--no-same-owner", "-xf", archive, "-C", unpacked]
    else:
        cmd = ["cp", "-a", tree.rstrip("/") + "/.", unpacked + "/"]
    rc, _out, err = module.run_command(cmd)
    if rc != 0:
        nospace = "No space left on device" in err
        what = f"no space left on device while unpacking into {os.path.dirname(stage)}" if nospace \
            else f"unpacking failed: {last_line(err, rc)}"
        fail_unpack(module, stage, created, what + f"; nothing was installed at {prefix}",
                    no_space=nospace)
    root = unwrap(unpacked, params["executable"])
    if root is None:
        fail_unpack(module, stage, created, "the archive holds no interpreter tree (no bin/ at its top "
                                            "or under one top-level directory)")
    try:
        os.rename(root, stage)
    except OSError as exc:
        fail_unpack(module, stage, created, f"cannot stage the tree: {exc}")
    remove_tree(unpacked)
    os.chmod(stage, 0o755)
    exe = params["executable"]
    if exe and not os.path.exists(os.path.join(stage, "bin", exe)):
        fail_unpack(module, stage, created, f"the tree has no bin/{exe}")
    return dict(changed=True, current=False, stage=stage, created_parents=created)


def final_check(module: AnsibleModule, prefix: str) -> str | None:
    """None if the interpreter starts at its final path and resolves its libraries, else why not."""
    exe = os.path.join(prefix, "bin", module.params["executable"])
    rc, out, err = module.run_command([exe, "-c", VERSION_CODE], environ_update={"LD_LIBRARY_PATH": ""})
    if rc != 0:
        return f"{exe} does not start at its final path: {last_line(err, rc)}"
    if module.params["version"] and out.strip() != module.params["version"]:
        return f"{exe} reports {out.strip()}, not {module.params['version']}"
    rc, out, err = module.run_command(["ldd", exe], environ_update={"LD_LIBRARY_PATH": ""})
    missing = [line.strip() for line in out.splitlines() if "not found" in line]
    if missing:
        return f"{exe} cannot resolve: {'; '.join(missing)}"
    return None


def present(module: AnsibleModule, prefix: str, key: str | None) -> dict[str, Any]:
    marker = read_marker(prefix)
    if installed(module, prefix, key, marker):
        return dict(changed=False, current=True)
    stage = stage_path(prefix, key)
    if module.check_mode:
        return dict(changed=True)
    if not os.path.isdir(stage):
        module.fail_json(msg=f"nothing staged for {prefix} at {stage}")
    if os.path.lexists(prefix) and marker is None:
        module.fail_json(msg=f"{prefix} exists and was not installed by oxzep7-deploy: "
                             "refusing to replace it")
    record = dict(module.params["marker"] or {})
    record["key"] = key
    record["installed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(stage, MARKER), "w") as fh:
        json.dump(record, fh, indent=2, sort_keys=True)
        fh.write("\n")
    previous = None
    if os.path.lexists(prefix):
        parent, name = os.path.split(os.path.normpath(prefix))
        previous = os.path.join(parent, f".{name}.oxzep7-previous-{int(time.time())}")
        os.rename(prefix, previous)
    os.rename(stage, prefix)
    problem = final_check(module, prefix)
    if problem:
        os.rename(prefix, stage)
        if previous:
            os.rename(previous, prefix)
        remove_tree(stage)
        module.fail_json(msg=problem + f"; {prefix} was put back as it was")
    if previous:
        remove_tree(previous)
    return dict(changed=True, replaced=previous is not None, marker=record)


def discarded(module: AnsibleModule, prefix: str, key: str | None) -> dict[str, Any]:
    stage = stage_path(prefix, key)
    found = [p for p in (stage, stage + ".unpack") if os.path.lexists(p)]
    if found and not module.check_mode:
        for path in found:
            remove_tree(path)
    return dict(changed=bool(found))


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["probe", "staged", "present", "discarded"]),
            prefix=dict(type="path", required=True),
            key=dict(type="str"),
            archive=dict(type="path"),
            sha256=dict(type="str"),
            tree=dict(type="path"),
            marker=dict(type="dict"),
            executable=dict(type="str"),
            version=dict(type="str"),
            need_bytes=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    prefix = module.params["prefix"]
    problem = prefix_problem(prefix)
    if problem:
        module.fail_json(msg=f"refused prefix {prefix}: {problem}")
    prefix = os.path.normpath(prefix)
    state = module.params["state"]
    key = module.params["key"]
    try:
        action = dict(probe=probe, staged=staged, present=present, discarded=discarded)[state]
        result = action(module, prefix, key)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            module.fail_json(msg=f"no space left on device under {os.path.dirname(prefix)}")
        raise
    module.exit_json(prefix=prefix, **result)


if __name__ == "__main__":
    main()
