"""The collection oxzep7.deploy: the tool's one copy of its Ansible content (`playbooks/`, the
collection's root: galaxy.yml, playbooks/, roles/, plugins/), made findable by Ansible for each
run without installing anything where the user's own collections live.

Local runs: a symlink `ansible_collections/oxzep7/deploy` -> the root, in the tool's cache (one
folder per root, so two installations sharing a cache never repoint each other's link), named
first in ANSIBLE_COLLECTIONS_PATH, then every path the user's configuration names. The playbook
runs through that link, from inside the collection.

Execution-node runs (runner/remote.py): the root is copied into the staged project as
`collections/ansible_collections/oxzep7/deploy`, found there by a collections path relative to the
project directory (the playbook's working directory on the node).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from oxzep7_deploy.paths import cache_dir, playbooks_dir

NAMESPACE = "oxzep7"
NAME = "deploy"
FQCN = f"{NAMESPACE}.{NAME}"
# where the collection's playbooks are, under its root
PLAYBOOKS = "playbooks"
# the collection under a collections directory
IN_COLLECTIONS = Path("ansible_collections") / NAMESPACE / NAME
# Ansible's own collections path, when nothing configures one (the execution node's)
ANSIBLE_DEFAULT_PATHS = ("~/.ansible/collections", "/usr/share/ansible/collections")
# the collections path of a staged project on an execution node, relative to the project dir
NODE_COLLECTIONS = "collections"


def root() -> Path:
    """The collection's root: the checkout's `playbooks/`, or the wheel's copy of it."""
    return playbooks_dir()


def playbook(name: str) -> str:
    """Where playbook `name` (e.g. "audit.yml") is, relative to the collection's root (an
    absolute path, a playbook of the caller's own, stays as it is)."""
    return name if Path(name).is_absolute() else f"{PLAYBOOKS}/{name}"


def linked(source: Path | None = None, cache: Path | None = None) -> Path:
    """A collections directory in the cache whose ansible_collections/oxzep7/deploy is a symlink
    to `source` (the collection's root); made or repointed atomically, kept between runs."""
    target = (root() if source is None else source).resolve()
    key = hashlib.sha256(str(target).encode()).hexdigest()[:16]
    base = (cache_dir() if cache is None else cache) / "collections" / key
    link = base / IN_COLLECTIONS
    if not (link.is_symlink() and Path(os.readlink(link)) == target):
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{NAME}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target, target_is_directory=True)
        if link.is_dir() and not link.is_symlink():  # a copy of the cache that followed the link
            _remove_folder(link)
        os.replace(tmp, link)
    return base


def _remove_folder(path: Path) -> None:
    """Out of the way first (one rename: a concurrent run sees no half-deleted collection), then
    deleted. Another run may have moved it already."""
    stale = path.with_name(f".{NAME}.stale.{os.getpid()}")
    try:
        os.replace(path, stale)
    except FileNotFoundError:
        return
    shutil.rmtree(stale, ignore_errors=True)


def search_path(ours: Path | str, configured: Iterable[str]) -> str:
    """ANSIBLE_COLLECTIONS_PATH: ours first (the CLI runs its own copy of oxzep7.deploy even when
    an older one is installed where the user's configuration points), then the user's paths,
    so every other collection is found as `ansible-playbook` would find it."""
    paths = [str(ours), *(str(p) for p in configured if str(p) != str(ours))]
    return os.pathsep.join(paths)
