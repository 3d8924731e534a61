"""`publish`: the controller's artifacts for a spec, copied into a directory laid out for
`artifacts.mirror`.

The layout is content-addressed: an artifact whose sha256 is H is the file `<dir>/sha256/H`,
which a host downloads as `<mirror>/sha256/H` and checks against H, the sha256 of the
controller's manifest. `<dir>/index.json` lists what is there, for people (hosts never read it).
Publishing again copies only what is missing or damaged; an operator may copy files there by
hand under the same names.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oxzep7_deploy.artifacts import (
    ArtifactCache,
    ArtifactError,
    artifact_key,
    check_prebuilt_archive,
    fetch_archive,
)
from oxzep7_deploy.rules import sha256_file
from oxzep7_deploy.spec.model import BuildMode, PrebuiltInstall, SourceInstall, Spec
from oxzep7_deploy.steps.wheels import interpreter_identity, wheel_set_key


@dataclass(frozen=True)
class Candidate:
    """An artifact of the controller that hosts of the spec may download."""

    kind: str  # "interpreter" | "wheels"
    path: Path
    sha256: str
    platform: str | None  # None: the same archive for every platform (prebuilt)
    key: str


@dataclass(frozen=True)
class Published:
    candidate: Candidate
    copied: bool  # False: the mirror directory had it already (same sha256)

    def to_json(self) -> dict[str, Any]:
        c = self.candidate
        return {"kind": c.kind, "sha256": c.sha256, "platform": c.platform, "key": c.key,
                "name": c.path.name, "path": f"sha256/{c.sha256}", "copied": self.copied}


def mirror_path(dest: Path, sha256: str) -> Path:
    return dest / "sha256" / sha256


def _manifests(cache: ArtifactCache) -> Iterator[dict[str, Any]]:
    if not cache.root.is_dir():
        return
    for manifest in sorted(cache.root.glob("*.json")):
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and isinstance(meta.get("platform"), str):
            yield meta


def candidates(spec: Spec, cache_dir: Path) -> tuple[list[Candidate], list[str]]:
    """What the controller has for `spec` (interpreter trees of every platform it built, wheel
    sets of every platform and requirements it built), and what it lacks, one sentence each."""
    cache = ArtifactCache(cache_dir)
    interp, install = spec.interpreter, spec.interpreter.install
    found: list[Candidate] = []
    missing: list[str] = []
    if isinstance(install, PrebuiltInstall):
        archive = fetch_archive(install.url, install.sha256, cache_dir)
        check_prebuilt_archive(archive, interp.minor)
        found.append(Candidate("interpreter", archive.path, archive.sha256, None, archive.sha256))
    elif isinstance(install, SourceInstall):
        trees = []
        for meta in _manifests(cache):
            platform = meta["platform"]
            key = artifact_key(interp.version, install.configure, platform, install.sha256,
                               interp.prefix)
            artifact = cache.lookup(key) if meta.get("key") == key else None
            if artifact is not None:
                trees.append(Candidate("interpreter", artifact.path, artifact.sha256, platform,
                                       key))
        found += trees
        if not trees:
            missing.append(f"no interpreter tree of Python {interp.version} built from "
                           f"{install.url} is in the controller's cache ({cache.root})")
    if spec.application.wheels is BuildMode.ONCE_PER_PLATFORM:
        sets = []
        pip_args = list(spec.application.pip_args)
        for meta in _manifests(cache):
            platform = meta["platform"]
            if meta.get("kind") != "wheels" or meta.get("pip_args") != pip_args:
                continue
            key = wheel_set_key(platform, interpreter_identity(spec, platform),
                                str(meta.get("requirements_sha256", "")), pip_args)
            artifact = cache.lookup(key) if meta.get("key") == key else None
            if artifact is not None:
                sets.append(Candidate("wheels", artifact.path, artifact.sha256, platform, key))
        found += sets
        if not sets:
            missing.append("no wheel set of the spec's requirements for this interpreter is in "
                           f"the controller's cache ({cache.root})")
    return found, missing


def publish(spec: Spec, cache_dir: Path, dest: Path) -> list[Published]:
    """Copy the spec's artifacts into `dest` (made if missing); idempotent. Raises
    `ArtifactError` when the controller lacks one the spec needs, before anything is copied."""
    found, missing = candidates(spec, cache_dir)
    if missing:
        raise ArtifactError(
            "nothing published: " + "; ".join(missing),
            hint="the controller caches an artifact when a build host builds it: run "
            "`oxzep7-deploy rehearse SPEC -i INVENTORY --limit BUILD_HOST` once with a copy of "
            "the spec without artifacts.mirror, then publish again")
    done = []
    try:
        for candidate in found:
            done.append(Published(candidate, _copy(candidate, dest)))
        _write_index(dest, done)
    except OSError as exc:
        raise ArtifactError(f"cannot publish into {dest}: {exc}",
                            hint="choose a --dest directory this user can write") from exc
    return done


def _copy(candidate: Candidate, dest: Path) -> bool:
    target = mirror_path(dest, candidate.sha256)
    if target.is_file() and sha256_file(target) == candidate.sha256:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, candidate.path.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(tmp, 0o644)  # served as it is: readable by the web server's user
        if sha256_file(Path(tmp)) != candidate.sha256:
            raise OSError(f"{candidate.path} changed while it was copied")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def _write_index(dest: Path, done: list[Published]) -> None:
    index = dest / "index.json"
    try:
        entries = json.loads(index.read_text()).get("artifacts", [])
    except (OSError, ValueError, AttributeError):
        entries = []
    known = {str(e.get("sha256")): e for e in entries if isinstance(e, dict)}
    for item in done:
        entry = item.to_json()
        entry.pop("copied")
        known[item.candidate.sha256] = entry
    tmp = dest / ".index.json.tmp"
    tmp.write_text(json.dumps({"layout": "sha256/<sha256>", "artifacts": list(known.values())},
                              indent=2, sort_keys=True) + "\n")
    os.replace(tmp, index)
