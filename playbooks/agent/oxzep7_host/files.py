"""Files: atomic JSON, private directories, an app's paths and the guard lock."""

import contextlib
import errno
import fcntl
import json
import os
import stat

from oxzep7_deploy.rules import write_bytes_atomic

from .base import _APP, AgentError


def write_json_atomic(path, document, mode=0o600):
    """Temp file in the same directory, fsync, rename(2) over `path`, fsync the directory."""
    write_bytes_atomic(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode)


def read_json(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    except ValueError as exc:  # a torn or hand-edited file: say which, not a bare decode error
        raise AgentError(
            "unreadable", f"{path} is not valid JSON ({exc}): restore it from a copy, or move it away "
            "if oxzep7 should start afresh here"
        ) from None




def private_dir(path):
    """A root-only (0700) directory, created if missing, mode enforced if present."""
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
    if stat.S_IMODE(os.stat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


class Paths:
    def __init__(self, state_dir, app):
        if not _APP.match(app or ""):
            raise AgentError("usage", f"invalid application name {app!r}", 3)
        self.base = state_dir
        self.app = app
        self.dir = os.path.join(state_dir, app)
        self.state = os.path.join(self.dir, "state.json")
        self.lock = os.path.join(self.dir, "lock")
        self.guard = os.path.join(self.dir, ".guard")
        self.snapshots = os.path.join(self.dir, "snapshots")
        self.env = os.path.join(self.dir, "env.json")  # application.env, root-only

    def ensure(self):
        private_dir(self.base)
        private_dir(self.dir)
        private_dir(self.snapshots)


@contextlib.contextmanager
def guarded(paths):
    """Serialise every change to one app's state on this host (flock on .guard)."""
    paths.ensure()
    fd = os.open(paths.guard, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

