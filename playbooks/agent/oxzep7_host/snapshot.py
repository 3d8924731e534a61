"""Snapshots: archive + checksum manifest; restore only into the listed paths."""

import contextlib
import hashlib
import os
import shutil
import tarfile
import time

from oxzep7_deploy.rules import fsync_dir, sha256_file

from .base import AgentError, iso
from .files import guarded, private_dir, read_json, write_json_atomic
from .state import history, load_state, save_state


def clean_path(path):
    norm = os.path.normpath(path)
    if not os.path.isabs(path) or norm == "/" or ".." in path.split("/") or norm != path.rstrip("/"):
        raise AgentError("snapshot-path", f"snapshot path {path!r} must be absolute, normalised and not /")
    return norm


def take_snapshot(paths, st, spaths, keep, deploy):
    """Archive `spaths` as they are now, with a manifest; the record, or None without paths."""
    if not spaths:
        return None
    spaths = [clean_path(p) for p in spaths]
    sid = "{}-{}".format(time.strftime("%Y%m%dT%H%M%S", time.gmtime()), os.urandom(3).hex())
    sdir = os.path.join(paths.snapshots, sid)
    private_dir(sdir)
    archive = os.path.join(sdir, "archive.tar.gz")
    files = {}
    kinds = []
    with tarfile.open(archive, "w:gz") as tar:
        for p in spaths:
            if not os.path.lexists(p):
                kinds.append({"path": p, "kind": "absent"})
                continue
            kinds.append({"path": p, "kind": "dir" if os.path.isdir(p) and not os.path.islink(p) else "file"})
            for member_path in walk(p):
                name = member_path.lstrip("/")
                info = tar.gettarinfo(member_path, arcname=name)
                entry = {
                    "type": _KIND.get(info.type, "other"),
                    "mode": info.mode,
                    "uid": info.uid,
                    "gid": info.gid,
                }
                if info.isreg():
                    entry["sha256"] = sha256_file(member_path)
                    entry["size"] = info.size
                    with open(member_path, "rb") as handle:
                        tar.addfile(info, handle)
                elif info.issym():
                    entry["target"] = info.linkname
                    tar.addfile(info)
                elif info.isdir():
                    tar.addfile(info)
                else:
                    raise AgentError("snapshot-path", f"{member_path} is not a file, directory or symlink")
                files[name] = entry
    with open(archive, "rb") as handle:
        os.fsync(handle.fileno())
    record = {
        "id": sid,
        "release": st["current"],
        "deploy": deploy,
        "created": iso(),
        "paths": kinds,
        "archive_sha256": sha256_file(archive),
        "files": len(files),
    }
    manifest = dict(record, members=files)
    write_json_atomic(os.path.join(sdir, "manifest.json"), manifest)
    st["snapshots"].append(record)
    prune_snapshots(paths, st, keep)
    return record


_KIND = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
}


def walk(top):
    yield top
    if os.path.isdir(top) and not os.path.islink(top):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                yield os.path.join(dirpath, name)


def prune_snapshots(paths, st, keep):
    """Keep the newest `keep`, and always the newest of each protected release."""
    keep = max(1, int(keep))
    ordered = list(reversed(st["snapshots"]))
    kept = set(s["id"] for s in ordered[:keep])
    for rid in (st["current"], st["previous"], st["last_good"]):
        for snap in ordered:
            if snap["release"] == rid:
                kept.add(snap["id"])
                break
    st["snapshots"] = [s for s in st["snapshots"] if s["id"] in kept]
    for name in os.listdir(paths.snapshots):
        if name not in kept:
            shutil.rmtree(os.path.join(paths.snapshots, name), ignore_errors=True)


def snapshot_for(st, rid):
    for snap in list(reversed(st["snapshots"])):
        if snap["release"] == rid:
            return snap
    return None


def check_archive(sdir, record):
    """Every member checked before anything is written; returns (manifest, {member: TarInfo})."""
    manifest = read_json(os.path.join(sdir, "manifest.json"))
    archive = os.path.join(sdir, "archive.tar.gz")
    if manifest is None or not os.path.isfile(archive):
        raise AgentError("snapshot-missing", "snapshot {} is incomplete".format(record["id"]))
    actual = sha256_file(archive)
    if actual != record["archive_sha256"] or actual != manifest.get("archive_sha256"):
        raise AgentError(
            "snapshot-checksum",
            "snapshot {}: archive checksum {} does not match the recorded {}".format(
                record["id"], actual, record["archive_sha256"]
            ),
        )
    allowed = [clean_path(p["path"]).lstrip("/") for p in record["paths"]]
    members = {}
    symlinks = set()
    with tarfile.open(archive, "r:gz") as tar:
        for info in tar.getmembers():
            name = info.name
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or "" in parts or "." in parts:
                raise AgentError(
                    "snapshot-unsafe",
                    "snapshot {}: member {!r} is absolute or leaves "
                    "its directory; nothing was restored".format(record["id"], name),
                )
            if not any(name == a or name.startswith(a + "/") for a in allowed):
                raise AgentError(
                    "snapshot-unsafe",
                    "snapshot {}: member {!r} is outside the listed paths; nothing was restored".format(
                        record["id"], name
                    ),
                )
            if not (info.isreg() or info.isdir() or info.issym()):
                raise AgentError(
                    "snapshot-unsafe",
                    "snapshot {}: member {!r} is a {}; only files, "
                    "directories and symlinks are restored".format(
                        record["id"], name, "hard link" if info.islnk() else "special file"
                    ),
                )
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in symlinks:
                    raise AgentError(
                        "snapshot-unsafe",
                        "snapshot {}: member {!r} lies under a symlink; nothing was restored".format(
                            record["id"], name
                        ),
                    )
            if info.issym():
                symlinks.add(name)
            if name in members:
                raise AgentError(
                    "snapshot-unsafe", "snapshot {}: member {!r} appears twice".format(record["id"], name)
                )
            want = manifest["members"].get(name)
            if want is None:
                raise AgentError(
                    "snapshot-unsafe",
                    "snapshot {}: member {!r} is not in its manifest".format(record["id"], name),
                )
            if info.isreg():
                member = tar.extractfile(info)
                digest = hashlib.sha256(member.read() if member else b"").hexdigest()
                if digest != want.get("sha256"):
                    raise AgentError(
                        "snapshot-checksum",
                        "snapshot {}: {} has checksum {}, the manifest says {}".format(
                            record["id"], name, digest, want.get("sha256")
                        ),
                    )
            members[name] = info
    missing = set(manifest["members"]) - set(members)
    if missing:
        raise AgentError(
            "snapshot-checksum",
            "snapshot {}: the archive lacks {}".format(record["id"], ", ".join(sorted(missing)[:5])),
        )
    return manifest, members


def restore_snapshot(paths, record):
    """Put each listed path back exactly as archived (verified first; swapped in by rename)."""
    sdir = os.path.join(paths.snapshots, record["id"])
    manifest, members = check_archive(sdir, record)
    archive = os.path.join(sdir, "archive.tar.gz")
    tag = f"{os.getpid()}-{os.urandom(3).hex()}"
    staged = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for entry in record["paths"]:
                path = clean_path(entry["path"])
                parent = os.path.dirname(path)
                if not os.path.isdir(parent):
                    os.makedirs(parent, 0o755)
                stage = os.path.join(parent, f".oxzep7-restore-{os.path.basename(path)}-{tag}")
                staged.append((entry, path, stage))
                if entry["kind"] != "absent":
                    write_members(tar, members, path, stage)
        for entry, path, stage in staged:
            old = os.path.join(os.path.dirname(path), f".oxzep7-old-{os.path.basename(path)}-{tag}")
            if os.path.lexists(path):
                os.rename(path, old)
            if entry["kind"] != "absent":
                os.rename(stage, path)
            fsync_dir(os.path.dirname(path))
            if os.path.lexists(old):
                remove_tree(old)
    finally:
        for _, _, stage in staged:
            if os.path.lexists(stage):
                remove_tree(stage)
    return {
        "id": record["id"],
        "paths": [p["path"] for p in record["paths"]],
        "files": len(manifest["members"]),
    }


def remove_tree(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def write_members(tar, members, path, stage):
    """Write the members under `path` into `stage` (a fresh sibling), never following a link."""
    prefix = path.lstrip("/")
    mine = sorted(
        (n for n in members if n == prefix or n.startswith(prefix + "/")), key=lambda n: n.count("/")
    )
    dirs = []
    for name in mine:
        info = members[name]
        dest = stage if name == prefix else os.path.join(stage, name[len(prefix) + 1 :])
        if info.isdir():
            os.mkdir(dest, 0o700)
            dirs.append((dest, info))
        elif info.issym():
            os.symlink(info.linkname, dest)
            with contextlib.suppress(OSError):
                os.lchown(dest, info.uid, info.gid)
        else:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(tar.extractfile(info), out)
                out.flush()
                os.fsync(out.fileno())
            os.chown(dest, info.uid, info.gid)
            os.chmod(dest, info.mode)
            os.utime(dest, (info.mtime, info.mtime))
    for dest, info in reversed(dirs):
        os.chown(dest, info.uid, info.gid)
        os.chmod(dest, info.mode)
        os.utime(dest, (info.mtime, info.mtime))


def snapshot(paths, spaths=None, keep=None, deploy=None):
    """Archive `spaths` (default: the spec's snapshot.paths) now, keeping `keep` snapshots."""
    with guarded(paths):
        st, _ = load_state(paths)
        cfg = st.get("config", {}).get("snapshot") or {}
        spaths = spaths if spaths else cfg.get("paths") or []
        keep = keep if keep is not None else cfg.get("keep", 5)
        record = take_snapshot(paths, st, spaths, keep, deploy)
        if record is not None:
            history(st, "snapshot", release=st["current"], deploy=deploy, detail=record["id"])
        save_state(paths, st)
    return {"changed": record is not None, "snapshot": record}
