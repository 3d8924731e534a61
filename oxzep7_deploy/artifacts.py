"""The controller's cache: archives fetched once and checked by sha256, and built interpreter trees."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

from oxzep7_deploy.errors import DeployFailed
from oxzep7_deploy.rules import sha256_file

# Bump when the way a tree is built or packed changes: old artifacts then no longer match.
RECIPE = 1
_CHUNK = 1 << 20
_PY_VERSION = re.compile(rb'#define\s+PY_VERSION\s+"([^"]+)"')


class ArtifactError(DeployFailed):
    """An archive cannot be used: missing, unreachable, wrong checksum or wrong contents.

    Raised on the controller before any host is touched.
    """


class ChecksumMismatch(ArtifactError):
    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(
            f"checksum mismatch for {what}: expected sha256 {expected}, got {actual}",
            hint="fix interpreter.install.sha256 in the spec, or the URL if it points at the "
            "wrong file; nothing was installed",
        )
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class LocalArchive:
    """An archive on the controller whose sha256 has been checked."""

    path: Path
    sha256: str
    url: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Artifact:
    """A packed interpreter tree in the cache, as its manifest describes it."""

    path: Path
    key: str
    sha256: str
    size: int
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def unpacked_bytes(self) -> int:
        """What the tree takes on a host's disk once unpacked (the manifest's `unpacked_bytes`;
        measured from the archive for a manifest written before it was recorded)."""
        recorded = self.meta.get("unpacked_bytes")
        return int(recorded) if recorded else unpacked_bytes(self.path)


_BLOCK = 4096


def unpacked_bytes(archive: Path) -> int:
    """The disk space a tar archive takes unpacked: every member rounded up to 4 KiB blocks
    (directories and links one block each), which is what ext4 and tmpfs charge for them;
    0 (unknown: no check on the hosts) for what is not a readable tar archive."""
    total = 0
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                blocks = max(1, -(-member.size // _BLOCK)) if member.isfile() else 1
                total += blocks * _BLOCK
    except (OSError, tarfile.TarError):
        return 0
    return total


def fetch_archive(url: str, sha256: str, cache_dir: Path, timeout: float = 60.0) -> LocalArchive:
    """The archive at `url` (http(s) or an absolute path) on the controller, sha256 verified.

    A download lands in `cache_dir/downloads/<sha256>/` and is reused by later runs.
    """
    expected = sha256.lower()
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        name = Path(parsed.path).name or "download"
        target = cache_dir / "downloads" / expected / name
        if not target.is_file():
            _download(url, target, timeout)
        actual = sha256_file(target)
        if actual != expected:
            target.unlink()
            raise ChecksumMismatch(url, expected, actual)
        return LocalArchive(target, actual, url)
    if parsed.scheme or not url.startswith("/"):
        raise ArtifactError(
            f"cannot fetch {url}: use an http(s) URL or an absolute path on the controller"
        )
    path = Path(url)
    if not path.is_file():
        raise ArtifactError(
            f"archive {url} does not exist on the controller",
            hint="fix interpreter.install.url, or copy the archive there; nothing was installed",
        )
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatch(url, expected, actual)
    return LocalArchive(path, actual, url)


def _download(url: str, target: Path, timeout: float) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, _CHUNK)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, urllib.error.HTTPError):
            reason: object = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", None) or exc
        raise ArtifactError(
            f"cannot download {url}: {reason}",
            hint="check the URL and that the controller can reach it; nothing was installed",
        ) from exc


def check_cpython_source(archive: LocalArchive, version: str, cache_dir: Path) -> None:
    """Refuse a tarball that is not the CPython source of `version` (remembered per checksum)."""
    seen = cache_dir / "checked" / f"{archive.sha256}.cpython-{version}"
    if seen.exists():
        return
    found = _read_patchlevel(archive.path)
    if found is None:
        raise ArtifactError(
            f"{archive.url} is not a CPython source tarball "
            "(no <dir>/configure and <dir>/Include/patchlevel.h)",
            hint="point interpreter.install.url at a Python-X.Y.Z.tar.xz from python.org",
        )
    if found != version:
        raise ArtifactError(
            f"{archive.url} is the source of CPython {found}, not {version}",
            hint="make interpreter.version and interpreter.install.url agree",
        )
    seen.parent.mkdir(parents=True, exist_ok=True)
    seen.touch()


def _read_patchlevel(path: Path) -> str | None:
    """PY_VERSION from Include/patchlevel.h, if the tarball also has a top-level configure."""
    try:
        with tarfile.open(path, "r:*") as tar:
            has_configure, version = False, None
            for member in tar:
                parts = member.name.removeprefix("./").split("/")
                if len(parts) == 2 and parts[1] == "configure":
                    has_configure = True
                elif parts[1:] == ["Include", "patchlevel.h"] and member.isfile():
                    fh = tar.extractfile(member)
                    match = _PY_VERSION.search(fh.read() if fh else b"")
                    version = match.group(1).decode() if match else None
                if has_configure and version:
                    return version
    except (tarfile.TarError, OSError, EOFError):
        return None
    return None


def check_prebuilt_archive(archive: LocalArchive, minor: str) -> None:
    """Refuse an archive without bin/python<minor> at its top or under one top-level directory."""
    wanted = f"bin/python{minor}"
    try:
        with tarfile.open(archive.path, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name == wanted or (name.count("/") == 2 and name.split("/", 1)[1] == wanted):
                    return
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"{archive.url} is not a readable tar archive: {exc}") from exc
    raise ArtifactError(
        f"{archive.url} holds no {wanted} (neither at its top nor under one top-level directory)",
        hint="a prebuilt archive is an installed tree, e.g. python-build-standalone install_only",
    )


def artifact_key(
    version: str, configure: Iterable[str], platform: str, source_sha256: str, prefix: str
) -> str:
    """What makes two builds interchangeable; names the artifact and the on-host marker."""
    ident = {
        "recipe": RECIPE,
        "version": version,
        "configure": list(configure),
        "platform": platform,
        "source_sha256": source_sha256,
        "prefix": prefix,
    }
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def prebuilt_key(archive_sha256: str, prefix: str) -> str:
    blob = json.dumps({"prebuilt": archive_sha256, "prefix": prefix}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def artifact_name(version: str, platform: str, key: str) -> str:
    return f"cpython-{version}-{platform}-{key}.tar.gz"


class ArtifactCache:
    """Built trees under `<cache_dir>/artifacts/`: `<name>` plus `<key>.json`, its manifest."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "artifacts"

    @property
    def incoming(self) -> Path:
        """Where a build host's artifact is fetched to before it is checked and stored."""
        path = self.root / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def lookup(self, key: str) -> Artifact | None:
        """The artifact for `key`, if present and its file still matches its checksum."""
        manifest = self.root / f"{key}.json"
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return None
        path = self.root / str(meta.get("name", ""))
        if not path.is_file() or path.stat().st_size != meta.get("size"):
            return None
        if sha256_file(path) != meta.get("sha256"):
            return None
        return Artifact(path, key, meta["sha256"], meta["size"], MappingProxyType(meta))

    def store(self, fetched: Path, key: str, sha256: str, meta: Mapping[str, Any]) -> Artifact:
        """Check `fetched` against the checksum the build host reported, then keep it."""
        actual = sha256_file(fetched)
        if actual != sha256:
            fetched.unlink(missing_ok=True)
            raise ChecksumMismatch(f"the artifact fetched from the build host ({fetched.name})",
                                   sha256, actual)
        self.root.mkdir(parents=True, exist_ok=True)
        # content-addressed: two builds of one key (parallel sessions) never overwrite each other
        stem, dot, ext = fetched.name.partition(".tar")
        path = self.root / f"{stem}-{sha256[:12]}{dot}{ext}"
        os.replace(fetched, path)
        record = {**meta, "key": key, "name": path.name, "sha256": sha256,
                  "size": path.stat().st_size, "unpacked_bytes": unpacked_bytes(path)}
        tmp = self.root / f".{key}.json.tmp"
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.root / f"{key}.json")
        return Artifact(path, key, sha256, record["size"], MappingProxyType(record))
