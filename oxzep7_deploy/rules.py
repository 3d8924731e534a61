"""Rules the controller and the hosts share, in one place: which interpreter prefixes are safe,
the sha256 of a file, atomic writes, and `{placeholder}` substitution.

Three readers, one source:
  - the controller imports this module (spec checks, artifacts, records, placeholders);
  - the host agent's shipped file includes it (`python -m oxzep7_deploy.agent_build` copies it in);
  - the Ansible module oxzep7.deploy.oxzep7_interp_tree imports it as the collection's module_utils
    `ansible_collections.oxzep7.deploy.plugins.module_utils.oxzep7_rules`
    (playbooks/plugins/module_utils/oxzep7_rules.py is a symlink to this file; Ansible ships it
    with the module, and `ansible-galaxy collection build` copies it in as a file).
So: standard library only, and it runs on Python 3.6 (the agent's oldest, tested), hence `Optional`
rather than `X | None` (annotations here are evaluated: no `from __future__ import annotations`).
"""

import contextlib
import errno
import hashlib
import os
import re
import shlex
from typing import List, Mapping, Optional, Union

# -- interpreter prefixes ------------------------------------------------------------------------

# /bin, /lib* are /usr/bin, /usr/lib* on most systems (merged /usr): the system Python lives there.
SYSTEM_ALIASES = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def normalize_path(path: str) -> str:
    """`path` with repeated slashes and `.` components removed: `//usr/./lib/` -> `/usr/lib`."""
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def is_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def prefix_problem(prefix: str) -> Optional[str]:
    """Why an interpreter prefix is refused, or None if it is a safe directory of its own.

    The one rule for the spec check, the controller's install step, the host module that
    installs a tree and the agent's prune (which removes trees): not /, nothing under /usr but
    /usr/local/<dir>, nothing under /bin, /sbin, /lib*, no `..`, at least two levels deep.
    """
    if not prefix.startswith("/"):
        return "must be an absolute path"
    if ".." in prefix.split("/"):
        return "must not contain '..': write the directory it means"
    path = normalize_path(prefix)
    if path == "/":
        return "must not be /: the interpreter needs a directory of its own"
    if is_under(path, "/usr") and not is_under(path, "/usr/local"):
        return "must not be under /usr, where the system's own Python lives; use /opt/… or /usr/local/…"
    for alias in SYSTEM_ALIASES:
        if is_under(path, alias):
            return f"must not be under {alias}, which is /usr{alias} on most systems; use /opt/…"
    if path.count("/") < 2 or path == "/usr/local":
        return (
            f"must be a directory of the interpreter's own, not {path} itself: "
            "e.g. /opt/python/{version} or /usr/local/python/{version}"
        )
    return None


# -- files ---------------------------------------------------------------------------------------

def sha256_file(path: Union[str, "os.PathLike[str]"]) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Union[str, "os.PathLike[str]"]) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def write_bytes_atomic(path: Union[str, "os.PathLike[str]"], data: bytes, mode: int = 0o600) -> None:
    """A reader sees the old file or the new one, never half of one: a temp file in the same
    directory, fsync, rename(2) over `path`, fsync the directory. Temp files of writers that
    were killed are removed on the next write."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    base = os.path.basename(path)
    for name in os.listdir(directory):
        if name.startswith("." + base + ".tmp-"):
            pid = name.rsplit("-", 1)[-1]
            if not pid.isdigit() or not _pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))
    # random part: threads of one process may write the same file; the pid last (see above)
    tmp = os.path.join(directory, f".{base}.tmp-{os.urandom(4).hex()}-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


# -- placeholders --------------------------------------------------------------------------------

# `{{` and `}}` are literal braces; `{word}` is a placeholder unless a `$` comes right before it,
# so `${HOME}` and `awk '{print $1}'` reach the shell as written.
PLACEHOLDER_TOKEN = re.compile(r"\{\{|\}\}|(?<!\$)\{([A-Za-z0-9_]+)\}")


class PlaceholderError(ValueError):
    """A template names a placeholder that has no value."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no value for placeholder {{{name}}}")
        self.name = name


def find_placeholders(template: str) -> List[str]:
    """The placeholder names `template` uses, in order, repeats included."""
    return [match.group(1) for match in PLACEHOLDER_TOKEN.finditer(template) if match.group(1)]


def shell_quote(value: str) -> str:
    """`value` as one shell word (shlex.quote: a newline or `$` is quoted too)."""
    return shlex.quote(value)


def fill_placeholders(template: str, values: Mapping[str, Optional[str]], quote: bool = True) -> str:
    """Fill `template`'s placeholders from `values`, each shell-quoted unless `quote` is false.

    `{{` and `}}` become `{` and `}`; `${NAME}` and any other brace stay as written. A placeholder
    missing from `values` (or None there) raises `PlaceholderError`.
    """

    def replace(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        value = values.get(name)
        if value is None:
            raise PlaceholderError(name)
        return shell_quote(value) if quote else value

    return PLACEHOLDER_TOKEN.sub(replace, template)
