# GENERATED FILE, do not edit: `python -m oxzep7_deploy.agent_build` builds it from
# playbooks/agent/oxzep7_host/*.py and oxzep7_deploy/rules.py; edit those, then rebuild.
# mypy: ignore-errors
"""oxzep7-host: the on-host half of oxzep7-deploy; owns state.json, locks, releases and the dead-man.

Runs on the host's system python3 (3.8+, standard library only), as root, installed by the
playbooks at /var/lib/oxzep7/bin/oxzep7-host. Every subcommand prints one JSON document on
stdout: {"ok": true, "changed": bool, ...} or {"ok": false, "code": "...", "error": "..."}.
Exit status: 0 ok, 1 failed, 2 lock held by someone else, 3 usage.

Its source is this package (playbooks/agent/oxzep7_host/) and oxzep7_deploy/rules.py; hosts get
ONE generated file, playbooks/files/oxzep7-host.py (`python -m oxzep7_deploy.agent_build`): it is
copied to hosts as is and depends on nothing there. Hosts need Python 3.8 or newer (standard
library only).

    state      --app A [--root R]               what the host runs (adopts a hand-made release)
    lock       --app A --deploy D --owner U --reason R --ttl S
    unlock     --app A [--deploy D] [--owner U] [--force]
    prepare    --app A                          build a release from a JSON request on stdin
    record-release --app A --release X --status S
    snapshot   --app A [--path P ...] [--keep N]
    switch     --app A --release X [--deploy D] [--deadman SECONDS] [--snapshot --path P ... --keep N]
    restart    --app A
    health     --app A [--release X]
    preflight  --app A --root R                 health of what runs now, before a deploy (JSON
                                                config on stdin; writes nothing)
    arm-deadman --app A --deploy D --seconds N
    deadman-fire --app A --token T             (run by the dead-man timer)
    confirm    --app A --deploy D --release X
    rollback   --app A [--to X] [--only-from X] [--deploy D] [--reason R] [--no-health]
    prune      --app A --keep N [--protect X ...]
"""

import argparse
import contextlib
import errno
import fcntl
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from typing import List, Mapping, Optional, Union

# ----------------------------------------------------------------------------------------------
# oxzep7_deploy/rules.py


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


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/base.py


AGENT_VERSION = 1
STATE_FORMAT = 1
DEFAULT_STATE_DIR = "/var/lib/oxzep7"
STATUSES = ("prepared", "live", "good", "bad", "failed")
HISTORY_MAX = 500
OUTPUT_TAIL = 4000
DESCRIPTION = (
    "oxzep7-host: the on-host half of oxzep7-deploy; owns state.json, locks, releases and the dead-man."
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_APP = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class AgentError(Exception):
    """A failure reported as {"ok": false, "code", "error", ...} with an exit status."""

    def __init__(self, code, message, exit_status=1, **extra):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.exit_status = exit_status
        self.extra = extra


def now():
    return time.time()


def iso(ts=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now() if ts is None else ts))


def substitute(template, values, quote=True):
    """The controller's placeholder rules (oxzep7_deploy/rules.py), failing as an AgentError."""
    try:
        return fill_placeholders(template, values, quote)
    except PlaceholderError as exc:
        raise AgentError(
            "placeholder", f"no value for placeholder {{{exc.name}}} in {template!r}"
        ) from None


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/files.py


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


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/context.py


ENV_FORMAT = 2  # env.json: {"format": 2, "releases": {rid: {name: value}}}; 1: one flat map


class Ctx:
    """One call's context, made fresh by main() for every call (nothing is carried between
    calls): `paths` of the app, `secret_keys` the application.env names to redact."""

    def __init__(self, paths):
        self.paths = paths
        self.secret_keys = []

    def use_env_keys(self, keys):
        """The application.env names of the spec or state this call works from."""
        self.secret_keys = list(keys or [])

    def run(self, argv, env, **options):
        """run_logged with this call's secrets redacted from the output."""
        return run_logged(argv, env, secrets=self.secret_keys, **options)

    def command_env(self, rid=None):
        """The environment for restart, health and verify commands of release `rid`: the env it
        was deployed with, over what the controller passed in this call (the release's own wins:
        a rollback to X runs with X's env, whatever the newest spec says); without a stored env
        for it (an older agent's flat env.json), the stored env under what the controller
        passed."""
        releases, legacy = read_envs(self.paths.env)
        for values in [*list(releases.values()), legacy]:
            for key in values:
                if key not in self.secret_keys:
                    self.secret_keys.append(key)
        if rid is not None and rid in releases:
            env = {k: v for k, v in os.environ.items() if k not in self.secret_keys}
            env.update({str(k): str(v) for k, v in releases[rid].items()})
            return env
        env = {str(k): str(v) for k, v in legacy.items()}
        env.update(os.environ)
        return env


def run_logged(argv, env, cwd=None, timeout=3600, shell=False, secrets=()):
    """(returncode, output tail) of a command; output is stdout+stderr, the values of `secrets`
    (names of variables in `env`) redacted."""
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            shell=shell,
            universal_newlines=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        return 127, str(exc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return 124, redact(out, env, secrets)[-OUTPUT_TAIL:] + f"\n(timed out after {timeout} s)"
    return proc.returncode, redact(out, env, secrets)[-OUTPUT_TAIL:]


def redact(text, env, secrets):
    for key in secrets:
        value = (env or {}).get(key)
        if value and len(value) >= 3:
            text = text.replace(value, "********")
    return text


def read_envs(path):
    """(per-release envs, legacy flat env) from env.json."""
    doc = read_json(path) if path else None
    if not doc:
        return {}, {}
    if doc.get("format") == ENV_FORMAT and isinstance(doc.get("releases"), dict):
        return doc["releases"], {}
    return {}, doc


def store_env(paths, keys, rids, keep=None):
    """Keep application.env (given by the controller in our environment) root-only on the host,
    per release: a rollback from host state alone and the dead-man run release X's commands
    with X's env. `rids` get this call's env; `keep`: the releases whose entries stay."""
    values = {k: os.environ[k] for k in keys if k in os.environ}
    releases, legacy = read_envs(paths.env)
    envs = dict(releases)
    for rid in rids:
        envs[rid] = values
    if keep is not None:
        envs = {r: v for r, v in envs.items() if r in keep}
    if legacy:  # an env.json of an older agent: it was the env of every release known then
        for rid in keep or ():
            envs.setdefault(rid, legacy)
    if envs:
        write_json_atomic(paths.env, {"format": ENV_FORMAT, "releases": envs})
    elif os.path.exists(paths.env):
        os.unlink(paths.env)


def last_line(text):
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/state.py


def empty_state(app, root):
    return {
        "format": STATE_FORMAT,
        "app": app,
        "root": root,
        "current": None,
        "previous": None,
        "last_good": None,
        "releases": {},
        "config": {},
        "deadman": None,
        "snapshots": [],
        "history": [],
        "updated": iso(),
    }


def current_link(root):
    """(release id, absolute target) that <root>/current points to; (None, None) without it."""
    link = os.path.join(root, "current")
    if not os.path.lexists(link):
        return None, None
    if not os.path.islink(link):
        raise AgentError(
            "current-not-symlink",
            f"{link} is not a symlink: move it to {root}/releases/<id> and link current to it",
        )
    target = os.path.normpath(os.path.join(root, os.readlink(link)))
    if os.path.dirname(target) == os.path.normpath(os.path.join(root, "releases")):
        return os.path.basename(target), target
    name = re.sub(r"[^A-Za-z0-9._-]", "-", os.path.basename(target)).strip(".-") or "release"
    return "adopted-" + name, target


def probe_interpreter(python):
    """{"executable", "version"} of an interpreter, by running it; None if it does not run."""
    code = "import platform,sys;print(platform.python_version());print(sys.prefix)"
    try:
        proc = subprocess.Popen(
            [python, "-I", "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
        )
        out, _ = proc.communicate(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    lines = out.splitlines()
    return {"executable": python, "version": lines[0].strip(), "sys_prefix": lines[1].strip()}


def venv_interpreter(venv):
    """What interpreter a venv was made from, from its pyvenv.cfg (no process started)."""
    info = {"executable": None, "version": None, "prefix": None, "managed": False}
    cfg = os.path.join(venv, "pyvenv.cfg")
    try:
        with open(cfg) as handle:
            for line in handle:
                key, _, value = line.partition("=")
                key, value = key.strip(), value.strip()
                if key in ("version", "version_info"):
                    info["version"] = ".".join(value.split(".")[:3])
                elif key == "executable":
                    info["executable"] = value
                elif key == "home" and not info["executable"]:
                    info["executable"] = os.path.join(value, "python3")
    except OSError:
        pass
    return info


def adopt_release(st, rid, target, reason):
    """A release made by hand (or drift) becomes known: status good, it is what was running."""
    venv = os.path.join(target, "venv")
    interp = venv_interpreter(venv)
    try:
        created = iso(os.lstat(target).st_mtime)
    except OSError:
        created = iso()
    st["releases"][rid] = {
        "id": rid,
        "seq": next_seq(st),
        "status": "good",
        "path": target,
        "adopted": True,
        "created": created,
        "updated": iso(),
        "deploy": None,
        "interpreter": interp,
        "spec": None,
        "values": {
            "python": interp.get("executable"),
            "venv": venv,
            "release": target,
            "version": interp.get("version"),
        },
    }
    history(st, "adopt", release=rid, detail=reason)


def history(st, event, **fields):
    entry = {"at": iso(), "event": event}
    entry.update({k: v for k, v in fields.items() if v is not None})
    st["history"].append(entry)
    del st["history"][:-HISTORY_MAX]


def load_state(paths, root=None):
    """The app's state (adopting what the host runs if there is no state yet); (state, changed)."""
    st = read_json(paths.state)
    changed = False
    if st is None:
        if root is None:
            raise AgentError(
                "no-state", f"oxzep7 has no state for {paths.app} on this host (it never deployed it here)"
            )
        st = empty_state(paths.app, root)
        changed = True
    elif st.get("format") != STATE_FORMAT:
        raise AgentError(
            "state-format",
            f"{paths.state} has format {st.get('format')!r}; this agent reads {STATE_FORMAT}",
        )
    if root is not None and os.path.normpath(root) != os.path.normpath(st["root"]):
        raise AgentError(
            "root-mismatch", "state of {} says its root is {}, not {}".format(paths.app, st["root"], root)
        )
    rid, target = current_link(st["root"])
    if rid is not None and rid != st["current"]:
        if rid not in st["releases"]:
            why = "running before oxzep7 managed it" if st["current"] is None else "found live"
            adopt_release(st, rid, target, why)
        else:
            history(
                st,
                "drift",
                release=rid,
                detail="current pointed to {}, state said {}".format(rid, st["current"]),
            )
        if st["current"] is not None:
            st["previous"] = st["current"]
        st["current"] = rid
        if st["releases"][rid]["status"] == "good" and st["last_good"] is None:
            st["last_good"] = rid
        changed = True
    return st, changed


def save_state(paths, st):
    st["updated"] = iso()
    paths.ensure()
    write_json_atomic(paths.state, st)


def release(st, rid):
    rel = st["releases"].get(rid)
    if rel is None:
        raise AgentError(
            "unknown-release",
            "no release {} of {} on this host (known: {})".format(
                rid, st["app"], ", ".join(sorted(st["releases"])) or "none"
            ),
        )
    return rel


def set_status(st, rid, status, **fields):
    rel = release(st, rid)
    rel["status"] = status
    rel["updated"] = iso()
    rel.update(fields)
    manifest = os.path.join(rel["path"], "release.json")
    if not rel.get("adopted") and os.path.isdir(rel["path"]):
        with contextlib.suppress(OSError, IOError):
            write_json_atomic(manifest, release_manifest(rel), mode=0o644)


def release_manifest(rel):
    keys = ("id", "status", "created", "updated", "deploy", "interpreter", "spec", "error")
    return {k: rel.get(k) for k in keys}


def good_order(st):
    """Releases that were good, most recently live first (from history), for rollback targets."""
    seen = []
    for entry in reversed(st["history"]):
        rid = entry.get("to") or entry.get("release")
        if (
            entry["event"] in ("switch", "rollback", "confirm", "adopt", "deadman")
            and rid
            and rid not in seen
        ):
            seen.append(rid)
    for rid in sorted(st["releases"], key=lambda r: age(st, r), reverse=True):
        if rid not in seen:
            seen.append(rid)
    return [r for r in seen if st["releases"].get(r, {}).get("status") == "good"]


def recompute_last_good(st):
    if st["last_good"] and st["releases"].get(st["last_good"], {}).get("status") == "good":
        return
    order = good_order(st)
    st["last_good"] = order[0] if order else None


def release_config(st, rid):
    """What release `rid` was deployed with: its health checks, restart command, services,
    env keys (a rollback or dead-man revert to it uses these, not the newest spec's). A release
    recorded before releases kept their own falls back to the app's last config."""
    rel = st["releases"].get(rid) if rid else None
    if rel is not None and rel.get("config") is not None:
        return rel["config"]
    return st.get("config") or {}


def adopted_config(config):
    """An adopted release (running before oxzep7 managed it) is restarted the way the app is, but
    has no health checks of its own: the first spec's checks may name its new version."""
    own = dict(config or {})
    own["health"] = dict(own.get("health") or {}, checks=[])
    own["adopted"] = True
    return own


def subst_values(st, rid):
    rel = release(st, rid)
    values = dict(rel.get("values") or {})
    values["root"] = st["root"]
    values["code"] = release_config(st, rid).get("code")
    port = release_config(st, rid).get("port")
    values["port"] = str(port) if port is not None else None
    return values


def next_seq(st):
    """Releases are ordered by when they were recorded here (timestamps tie within a second)."""
    return 1 + max([r.get("seq", 0) for r in st["releases"].values()] or [0])


def age(st, rid):
    rel = st["releases"][rid]
    return (rel.get("seq", 0), rel.get("created") or "")


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/lock.py


def lock_view(lock):
    if lock is None:
        return None
    view = dict(lock)
    view["expired"] = now() >= float(lock.get("expires_epoch", 0))
    return view


def holder_text(lock):
    return "deploy {} (owner {}, reason {!r}) until {}".format(
        lock.get("deploy"), lock.get("owner"), lock.get("reason"), lock.get("expires")
    )


def acquire_lock(paths, deploy, owner, reason, ttl):
    """Take the app's lock for `deploy` (or refresh it); the caller holds the guard."""
    if ttl <= 0:
        raise AgentError("usage", "--ttl must be positive", 3)
    held = read_json(paths.lock)
    stale = None
    # the same deploy run by another owner (another controller or directory) is someone else
    if held is not None and (held.get("deploy") != deploy or held.get("owner") != owner):
        if not lock_view(held)["expired"]:
            view = lock_view(held)
            raise AgentError("locked", f"{paths.app} is locked by {holder_text(held)}", 2, holder=view)
        stale = held
    created = held["created"] if held and stale is None else iso()
    lock = {
        "app": paths.app,
        "deploy": deploy,
        "owner": owner,
        "reason": reason,
        "created": created,
        "ttl": ttl,
        "expires": iso(now() + ttl),
        "expires_epoch": now() + ttl,
    }
    write_json_atomic(paths.lock, lock)
    return {
        "changed": held is None or stale is not None,
        "lock": lock_view(lock),
        "broke_stale": stale,
        "refreshed": held is not None and stale is None,
    }


def release_lock(paths, deploy=None, owner=None, force=False):
    """Drop the app's lock if it is `deploy`'s (or `owner`'s), expired, or with `force`; the
    caller holds the guard."""
    held = read_json(paths.lock)
    if held is None:
        return {"changed": False, "lock": None, "released": None}
    view = lock_view(held)
    if deploy and owner:  # both given: both must match (one deploy id, two owners: see acquire)
        mine = held.get("deploy") == deploy and held.get("owner") == owner
    else:
        mine = (deploy and held.get("deploy") == deploy) or (owner and held.get("owner") == owner)
    if not (force or mine or view["expired"]):
        raise AgentError(
            "locked",
            f"{paths.app} is locked by {holder_text(held)}; unlock --force breaks it",
            2,
            holder=view,
        )
    os.unlink(paths.lock)
    fsync_dir(paths.dir)
    if force and not mine and not view["expired"]:
        with contextlib.suppress(AgentError):
            st, _ = load_state(paths)
            history(st, "unlock-forced", deploy=held.get("deploy"), detail=holder_text(held))
            save_state(paths, st)
    return {"changed": True, "lock": None, "released": view}


def lock_if_asked(paths, deploy, lock):
    """`lock` = (ttl, owner, reason) from `--lock-ttl` on switch, rollback: take the lock for
    `deploy` in the same call (one SSH round trip instead of two); the caller holds the guard."""
    ttl, owner, reason = lock or (None, None, None)
    if not ttl:
        return None
    if not deploy:
        raise AgentError("usage", "--lock-ttl needs --deploy", 3)
    return acquire_lock(paths, deploy, owner or "oxzep7", reason or "", ttl)


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/snapshot.py


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
                digest = hashlib.sha256(tar.extractfile(info).read()).hexdigest()
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


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/gap.py


PROBE_INTERVAL = 0.05
PROBE_TIMEOUT = 2.0
SETTLE = 30.0


def probe_port(port, timeout=PROBE_TIMEOUT):
    """Whether anything answered an HTTP request on 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"User-Agent": "oxzep7-host gap probe"})
        conn.getresponse().read(65536)
        return True
    except Exception:
        return False
    finally:
        conn.close()


class GapProbe:
    """`with GapProbe(port) as gap: restart(); health()` then `gap.report()`."""

    def __init__(self, port):
        self.port = int(port) if port else None
        self.samples = []  # (started, answered)
        self.started = self.ended = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.started = time.time()
        if self.port:
            self._thread = threading.Thread(target=self._run, name="gap-probe", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, *exc):
        if self._thread is not None and exc_type is None:
            # healthy is not enough where the release has no checks of its own (an adopted
            # one): the window lasts until the app answers again, SETTLE seconds at most
            deadline = time.time() + SETTLE
            while time.time() < deadline and not (self.samples and self.samples[-1][1]):
                time.sleep(PROBE_INTERVAL)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(PROBE_TIMEOUT + 1)
        self.ended = time.time()
        return False

    def _run(self):
        while not self._stop.is_set():
            at = time.time()
            self.samples.append((at, probe_port(self.port)))
            self._stop.wait(max(0.0, PROBE_INTERVAL - (time.time() - at)))

    def gap(self):
        if not self.port:
            return None
        total, down_since = 0.0, None
        for at, answered in list(self.samples):
            if not answered and down_since is None:
                down_since = at
            elif answered and down_since is not None:
                total += at - down_since
                down_since = None
        if down_since is not None:
            total += (self.ended or time.time()) - down_since
        return round(total, 3)

    def report(self):
        """What the host's report says of it: the gap, and the window it was measured in
        (epoch seconds, the host's clock)."""
        return {
            "restart_gap_s": self.gap(),
            "restart_window": [round(self.started or 0, 3), round(self.ended or 0, 3)],
            "gap_probes": len(self.samples),
            "gap_unanswered": sum(1 for _, answered in self.samples if not answered),
        }


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/health.py


def has_systemd():
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def restart_services(ctx, st, rid):
    cfg = release_config(st, rid)
    services = list(cfg.get("services") or [])
    done = []
    env = ctx.command_env(rid)
    if services and has_systemd():
        verb = "reload" if cfg.get("restart") == "reload" else "restart"
        for unit in services:
            restart_one(ctx, done, {"unit": unit, "verb": verb}, f"systemctl {verb} {unit}",
                        ["systemctl", verb, unit], env, timeout=300)
    elif cfg.get("restart_command"):
        command = substitute(cfg["restart_command"], subst_values(st, rid))
        restart_one(ctx, done, {"command": command}, f"restart command `{command}`",
                    command, env, cwd=st["root"], timeout=600, shell=True)
    elif services:
        raise AgentError(
            "restart-failed",
            "services {} are listed but this host has no systemd and the spec has no restart_command".format(
                ", ".join(services)
            ),
        )
    return done


def restart_one(ctx, done, record, what, argv, env, **options):
    """Run one restart; `done` gets `record` with its rc; a failure raises restart-failed."""
    rc, out = ctx.run(argv, env, **options)
    done.append(dict(record, rc=rc))
    if rc != 0:
        raise AgentError("restart-failed", f"{what} exited {rc}: {last_line(out)}", restarted=done)


def check_units(ctx, services):
    """Every unit the spec restarts after a switch exists here: a typo found while preparing,
    not after the first host has switched."""
    if not services or not has_systemd():
        return
    missing = []
    for unit in services:
        rc, out = ctx.run(["systemctl", "show", "--property=LoadState", "--value", unit], dict(os.environ))
        if rc != 0 or out.strip() in ("not-found", "bad-setting", "error"):
            missing.append(unit)
    if missing:
        raise AgentError(
            "unit-not-found",
            "application.services: no systemd unit {} on this host (systemctl list-unit-files shows "
            "what is there)".format(", ".join(missing)),
        )


def restart(ctx):
    st, _ = load_state(ctx.paths)
    ctx.use_env_keys(st.get("config", {}).get("env_keys"))
    return {"changed": True, "restarted": restart_services(ctx, st, st["current"])}


def http_check(check):
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    want = int(check.get("status", 200))
    try:
        resp = opener.open(check["url"], timeout=float(check.get("timeout", 5)))
        status, body = resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(65536)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    text = body.decode("utf-8", "replace")
    if status != want:
        return False, f"status {status} (wanted {want}): {last_line(text)[:600]}"
    if check.get("contains") and check["contains"] not in text:
        return False, f"status {status} but the body lacks {check['contains']!r}"
    return True, f"status {status}"


def run_checks(ctx, st, rid):
    values = subst_values(st, rid)
    results = []
    env = ctx.command_env(rid)
    for check in (release_config(st, rid).get("health") or {}).get("checks") or []:
        if "http" in check:
            http = dict(check["http"], url=substitute(check["http"]["url"], values, quote=False))
            ok, detail = http_check(http)
            results.append({"check": "http " + http["url"], "ok": ok, "detail": detail})
        else:
            command = substitute(check["command"], values)
            rc, out = ctx.run(command, env, cwd=st["root"], timeout=300, shell=True)
            results.append(
                {
                    "check": "command " + command,
                    "ok": rc == 0,
                    "detail": f"exit {rc}" + ((": " + last_line(out)[:600]) if out else ""),
                }
            )
    return results


def health(ctx, st, rid, retries=None, interval=None):
    cfg = release_config(st, rid).get("health") or {}
    if not cfg.get("checks"):
        return {"ok": True, "attempts": 0, "checks": [], "seconds": 0,
                "unchecked": "release {} has no health checks of its own{}".format(
                    rid, " (adopted: it ran before oxzep7 managed the app)"
                    if (st["releases"].get(rid) or {}).get("adopted") else "")}
    retries = max(1, int(cfg.get("retries", 10) if retries is None else retries))
    interval = float(cfg.get("interval", 2) if interval is None else interval)
    started = now()
    results = []
    for attempt in range(1, retries + 1):
        results = run_checks(ctx, st, rid)
        if all(r["ok"] for r in results):
            return {"ok": True, "attempts": attempt, "checks": results, "seconds": round(now() - started, 2)}
        if attempt < retries:
            time.sleep(interval)
    failed = next(r for r in results if not r["ok"])
    return {
        "ok": False,
        "attempts": retries,
        "checks": results,
        "failed_check": failed["check"],
        "message": "{}: {}".format(failed["check"], failed["detail"]),
        "seconds": round(now() - started, 2),
    }


def check_health(ctx, rid=None, retries=None, interval=None):
    """The current release's health checks (`rid`, when given, must be current)."""
    st, _ = load_state(ctx.paths)
    ctx.use_env_keys(st.get("config", {}).get("env_keys"))
    rid = rid or st["current"]
    if rid != st["current"]:
        raise AgentError(
            "not-current", "release {} is not current (current is {})".format(rid, st["current"])
        )
    report = health(ctx, st, rid, retries, interval)
    if not report["ok"]:
        raise AgentError(
            "health-failed",
            f"health check failed after {report['attempts']} attempts: {report['message']}",
            health=report,
            release=rid,
        )
    return {"changed": False, "release": rid, "health": report}


def preflight(ctx, req, root=None):
    """Health of what the host runs now, before a deploy changes anything: the current
    release's own checks, or (a release adopted or recorded without them, or no `current`) the
    checks of the spec about to be deployed, given on stdin. Read-only: no state, no lock."""
    paths = ctx.paths
    config = req.get("config") or {}
    if os.path.exists(paths.state) or root:
        st, _ = load_state(paths, root)  # adoption shown, not written
    else:
        st = empty_state(paths.app, root)
    ctx.use_env_keys(config.get("env_keys"))
    rid = st["current"]
    rel = st["releases"].get(rid) if rid else None
    own = rel is not None and not rel.get("adopted") and rel.get("config") is not None
    probe = json.loads(json.dumps(st))
    if rid is None:  # nothing to run the checks "of": {root} and {code} only
        rid = ".none"
        probe["releases"][rid] = {"id": rid, "path": None, "values": {}}
    if not own:
        probe["releases"][rid]["config"] = config
    retries = int((release_config(probe, rid).get("health") or {}).get("retries", 3))
    try:
        report = health(ctx, probe, rid, retries=min(3, retries))  # a running app answers at once
    except AgentError as exc:  # e.g. a placeholder that only the new release can fill
        report = {"ok": False, "attempts": 0, "checks": [], "message": exc.message}
    return {
        "changed": False,
        "current": st["current"],
        "managed": os.path.exists(paths.state),
        "checks_of": "release" if own else "spec",
        "healthy": bool(report["ok"]),
        "health": report,
    }


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/deadman.py


def arm(ctx, seconds, deploy, old, new, mode="auto"):
    paths = ctx.paths
    token = "{}-{}".format(re.sub(r"[^A-Za-z0-9]", "", deploy or "x")[:24], os.urandom(4).hex())
    record = {
        "token": token,
        "deploy": deploy,
        "from": old,
        "to": new,
        "seconds": seconds,
        "armed": iso(),
        "fires": iso(now() + seconds),
        "fires_epoch": now() + seconds,
    }
    agent = os.path.abspath(__file__)
    argv = [
        sys.executable,
        agent,
        "--state-dir",
        paths.base,
        "deadman-fire",
        "--app",
        paths.app,
        "--token",
        token,
    ]
    if mode == "auto":
        mode = "systemd" if has_systemd() and shutil.which("systemd-run") else "process"
    if mode == "systemd":
        unit = f"oxzep7-deadman-{paths.app}-{token}"
        rc, out = ctx.run(
            [
                "systemd-run",
                "--unit",
                unit,
                f"--on-active={seconds}s",
                "--timer-property=AccuracySec=1s",
                "--description",
                f"oxzep7 dead-man for {paths.app}",
                *argv,
            ],
            dict(os.environ),
            timeout=60,
        )
        if rc != 0:
            raise AgentError("deadman", f"systemd-run could not arm the dead-man: {last_line(out)}")
        record.update(mode="systemd", unit=unit)
    else:
        sleeper = [
            sys.executable,
            "-c",
            "import os,sys,time;time.sleep(float(sys.argv[1]));os.execv(sys.argv[2],sys.argv[2:])",
            str(seconds),
        ]
        record.update(mode="process", pid=spawn_detached(sleeper + argv))
    return record


def spawn_detached(argv):
    """A process of its own session (argv sleeps, then fires); it outlives its parents."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # first child: a new session, then fork again and leave
        try:
            os.close(read_end)
            os.setsid()
            grandchild = os.fork()
            if grandchild:
                os.write(write_end, str(grandchild).encode())
                os._exit(0)
            os.close(write_end)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, 65536)
            os.execv(argv[0], argv)
        finally:
            os._exit(1)
    os.close(write_end)
    os.waitpid(pid, 0)
    data = os.read(read_end, 32)
    os.close(read_end)
    return int(data)


def disarm(ctx, st):
    """Stop the pending dead-man (if any) and forget it; the fire also checks the token."""
    record = st.get("deadman")
    st["deadman"] = None
    if not record:
        return None
    if record.get("mode") == "systemd":
        for suffix in (".timer", ".service"):
            ctx.run(["systemctl", "stop", record["unit"] + suffix], dict(os.environ), timeout=60)
    elif record.get("pid"):
        pid = int(record["pid"])
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                mine = record["token"].encode() in handle.read()
        except OSError:
            mine = False
        if mine:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
    return record


def arm_deadman(ctx, deploy, seconds, mode="auto"):
    paths = ctx.paths
    with guarded(paths):
        st, _ = load_state(paths)
        disarm(ctx, st)
        st["deadman"] = arm(
            ctx, seconds, deploy, st["previous"], st["current"], mode
        )
        save_state(paths, st)
    return {"changed": True, "deadman": st["deadman"]}


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/switch.py


def switch_link(root, rel):
    """<root>/current -> the release, by rename(2) of a new symlink over it; dir fsync'd."""
    link = os.path.join(root, "current")
    target = os.path.relpath(rel["path"], root)
    tmp = os.path.join(root, f".current.tmp-{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, link)
    fsync_dir(root)


def usable(rel):
    if rel.get("adopted"):  # made by hand: its venv may be anywhere; put back as it was found
        if not os.path.isdir(rel["path"]):
            raise AgentError("release-broken", "release {} ({}) is gone".format(rel["id"], rel["path"]))
        return
    python = os.path.join(rel["path"], "venv", "bin", "python")
    if not os.path.exists(python):
        raise AgentError("release-broken", "release {} has no {}".format(rel["id"], python))


def switch_locked(ctx, rid, deploy, deadman, deadman_mode, snapshot_paths, keep):
    """The switch itself: snapshot, arm the dead-man, move `current`; the caller holds the guard."""
    paths = ctx.paths
    st, _ = load_state(paths)
    rel = release(st, rid)
    if st["current"] == rid:
        if rel["status"] == "prepared":
            set_status(st, rid, "live", deploy=deploy or rel.get("deploy"))
        save_state(paths, st)
        return {
            "changed": False,
            "from": st["previous"],
            "to": rid,
            "deadman": st["deadman"],
            "snapshot": None,
        }
    # a release the dead-man took back from this very deploy (its controller was lost) was never
    # judged unhealthy: the deploy, resumed, may switch to it again
    resumed = deploy and (rel.get("bad_reason") or "").startswith(
        f"dead-man: deploy {deploy} was not confirmed")
    if rel["status"] in ("failed", "bad") and not resumed:
        raise AgentError(
            "release-{}".format(rel["status"]),
            "release {} is {} on this host; it is not switched to".format(rid, rel["status"]),
        )
    usable(rel)
    old = st["current"]
    snapshot = None
    if snapshot_paths is not None:  # what is live right now, under the same guard as the switch
        snapshot = take_snapshot(paths, st, snapshot_paths, keep or 5, deploy)
        if snapshot is not None:
            history(st, "snapshot", release=old, deploy=deploy, detail=snapshot["id"])
    if old is None:  # the first switch of an app that had no `current`: how to go back to that
        st["adoption"] = {"release": rid, "deploy": deploy, "at": iso(),
                          "units": unit_states(ctx, release_config(st, rid).get("services"))}
    else:
        st["adoption"] = None  # past the first release: rollbacks go to releases from here on
    if deadman:
        disarm(ctx, st)
        st["deadman"] = arm(ctx, deadman, deploy, old, rid, deadman_mode)
        save_state(paths, st)  # armed before the link moves: a crash in between is covered
    switch_link(st["root"], rel)
    st["previous"], st["current"] = old, rid
    set_status(st, rid, "live", deploy=deploy or rel.get("deploy"))
    history(st, "switch", release=rid, deploy=deploy, to=rid, **{"from": old})
    save_state(paths, st)
    return {"changed": True, "from": old, "to": rid, "deadman": st["deadman"], "snapshot": snapshot}


def first_switch(st):
    """True when the current release is the first one switched to where the app had no
    `current` at all: undoing it means no `current` again (see undo_adoption)."""
    record = st.get("adoption") or {}
    return st["current"] is not None and record.get("release") == st["current"]


def unit_states(ctx, services):
    """{unit: "active" | "inactive" | "failed" | ...} of the app's units now (no systemd: {})."""
    if not services or not has_systemd():
        return {}
    states = {}
    for unit in services:
        _, out = ctx.run(["systemctl", "is-active", unit], dict(os.environ), timeout=60)
        states[unit] = (out.strip().splitlines() or ["unknown"])[-1]
    return states


def undo_adoption(ctx, st, reason, deploy, event="rollback"):
    """Back to how the app was before oxzep7's first switch on this host: no `current`, and
    its units as they were then (active ones restarted, the others stopped); the caller holds
    the guard. The release it leaves is marked bad."""
    paths = ctx.paths
    first = st["current"]
    record = st.get("adoption") or {}
    disarm(ctx, st)
    link = os.path.join(st["root"], "current")
    if os.path.islink(link):
        os.unlink(link)
        fsync_dir(st["root"])
    st["previous"], st["current"] = first, None
    st["adoption"] = None
    if first is not None:
        set_status(st, first, "bad", bad_reason=reason)
    detail = reason + "; no current release, as before oxzep7's first switch"
    history(st, event, deploy=deploy, detail=detail, **{"from": first})
    recompute_last_good(st)
    save_state(paths, st)
    result = {"changed": True, "from": first, "to": None, "restored": None, "reason": reason,
              "units": {}}
    problems = []
    for unit, was in sorted((record.get("units") or {}).items()):
        verb = "restart" if was in ("active", "activating", "reloading") else "stop"
        rc, out = ctx.run(["systemctl", verb, unit], ctx.command_env(), timeout=300)
        result["units"][unit] = {"was": was, "did": verb, "rc": rc}
        if rc != 0:
            problems.append(f"systemctl {verb} {unit} exited {rc}: {last_line(out)}")
    if problems:
        history(st, event + "-incomplete", detail="; ".join(problems))
        save_state(paths, st)
        raise AgentError("rollback-incomplete", "removed current (as before oxzep7's first switch) "
                         "but " + "; ".join(problems), **result)
    return result


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/prune.py


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


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/rollback.py


def confirm(ctx, rid, deploy=None, prune_keep=None, unlock=False):
    """`rid` is good: disarm the dead-man; then prune to `prune_keep` and drop `deploy`'s lock."""
    paths = ctx.paths
    with guarded(paths):
        st, _ = load_state(paths)
        if st["current"] != rid:
            fired = [h for h in st["history"][-20:] if h["event"] == "deadman"]
            why = " (the dead-man reverted it: {})".format(fired[-1].get("detail")) if fired else ""
            raise AgentError(
                "not-current",
                "release {} is no longer current; {} is{}".format(rid, st["current"], why),
            )
        record = st.get("deadman")
        if record and record.get("deploy") not in (deploy, None):
            raise AgentError(
                "deadman-other", "the armed dead-man belongs to deploy {}".format(record.get("deploy"))
            )
        disarm(ctx, st)
        set_status(st, rid, "good")
        st["last_good"] = rid
        history(st, "confirm", release=rid, deploy=deploy)
        save_state(paths, st)
        report = {"changed": True, "release": rid, "last_good": rid}
        if prune_keep:
            report["pruned"] = prune(paths, prune_keep)
        if unlock and deploy:
            report["unlocked"] = release_lock(paths, deploy)["released"] is not None
    return report


def rollback_target(st, to=None):
    cur = st["current"]
    if to is not None:
        rel = release(st, to)
        if to == cur:
            raise AgentError("already-current", f"release {to} is already current")
        if rel["status"] == "failed":
            raise AgentError("release-failed", f"release {to} failed to prepare; it cannot be rolled back to")
        return to
    for rid in good_order(st):
        if rid != cur:
            return rid
    others = ", ".join(
        "{} ({})".format(rid, rel["status"]) for rid, rel in st["releases"].items() if rid != cur
    )
    raise AgentError(
        "nothing-to-roll-back",
        "{} has no good release to roll back to besides the current one ({}); {}".format(
            st["app"],
            cur or "none",
            f"the others here: {others}; pick one with --to RELEASE" if others else "no other release here",
        ),
    )


def do_rollback(
    ctx, st, target, reason, deploy, check=True, event="rollback", restore=True, retries=None, interval=None
):
    """Restore the target's snapshot, switch to it, restart, health; mark what we left bad."""
    paths = ctx.paths
    rel = release(st, target)
    usable(rel)
    snap = snapshot_for(st, target) if restore else None
    restored = restore_snapshot(paths, snap) if snap else None  # raises before any switch
    disarm(ctx, st)
    old = st["current"]
    switch_link(st["root"], rel)
    st["previous"], st["current"] = old, target
    if old is not None and old != target:
        set_status(st, old, "bad", bad_reason=reason)
    history(st, event, release=target, deploy=deploy, to=target, detail=reason, **{"from": old})
    if rel["status"] in ("bad", "prepared", "live") and not check:
        set_status(st, target, "live")
    recompute_last_good(st)
    save_state(paths, st)
    result = {"changed": True, "from": old, "to": target, "restored": restored, "reason": reason}
    with GapProbe(release_config(st, target).get("port")) as gap:
        _restart_and_check(ctx, st, target, event, result, check, retries, interval)
    result.update(gap.report())
    if check:
        set_status(st, target, "good")
        st["last_good"] = target
        save_state(paths, st)
    return result


def _restart_and_check(ctx, st, target, event, result, check, retries, interval):
    paths = ctx.paths
    try:
        result["restarted"] = restart_services(ctx, st, target)
    except AgentError as exc:
        history(st, event + "-incomplete", release=target, detail=exc.message)
        save_state(paths, st)
        raise AgentError(
            "rollback-incomplete",
            f"switched back to {target} but the restart failed: {exc.message}",
            **dict(result, restart=exc.extra),
        ) from exc
    if check:
        report = health(ctx, st, target, retries, interval)
        result["health"] = report
        if not report["ok"]:
            history(st, event + "-unhealthy", release=target, detail=report["message"])
            save_state(paths, st)
            raise AgentError(
                "rollback-unhealthy",
                "switched back to {} but it is unhealthy: {}".format(target, report["message"]),
                **result,
            )


def rollback(ctx, to=None, only_from=None, deploy=None, reason=None, check=True, restore=True,
             retries=None, interval=None, lock=None, unlock=False):
    """Roll back (to `to`, or the newest good release); with `lock` = (ttl, owner, reason) take
    `deploy`'s lock first and with `unlock` release it after, success or not (lock, rollback
    and unlock in one agent call). `only_from`: only if that release is current here."""
    paths = ctx.paths
    if not os.path.exists(paths.state):  # before the guard makes any directory on this host
        load_state(paths)  # raises no-state
    with guarded(paths):
        taken = lock_if_asked(paths, deploy, lock)
        try:
            report = rollback_locked(ctx, to, only_from, deploy, reason, check, restore, retries, interval)
        finally:
            if taken and unlock:
                release_lock(paths, deploy)
    report["lock"] = taken["lock"] if taken else None
    return report


def rollback_locked(ctx, to, only_from, deploy, reason, check, restore, retries, interval):
    st, _ = load_state(ctx.paths)
    ctx.use_env_keys(st.get("config", {}).get("env_keys"))
    if only_from and st["current"] != only_from:
        return {
            "changed": False,
            "from": None,
            "to": st["current"],
            "reason": "release {} is not current here ({} is): nothing to undo".format(
                only_from, st["current"]
            ),
        }
    reason = reason or "rollback requested"
    try:
        target = rollback_target(st, to)
    except AgentError as exc:
        if exc.code != "nothing-to-roll-back" or not first_switch(st):
            raise
        return undo_adoption(ctx, st, reason, deploy)  # the first release: back to none
    return do_rollback(
        ctx, st, target, reason, deploy, check=check, restore=restore, retries=retries, interval=interval
    )


def deadman_fire(ctx, token):
    """Run by the dead-man timer: revert the switch it was armed for, if still armed (`token`)."""
    paths = ctx.paths
    with guarded(paths):
        st, _ = load_state(paths)
        record = st.get("deadman")
        if not record or record.get("token") != token:
            return {"changed": False, "fired": False, "reason": "disarmed"}
        st["deadman"] = None
        reason = f"dead-man: deploy {record['deploy']} was not confirmed within {record['seconds']}s"
        if st["current"] == record["to"] and not record.get("from") and first_switch(st):
            return dict(undo_adoption(ctx, st, reason, record["deploy"], event="deadman"), fired=True)
        if st["current"] != record["to"] or not record.get("from"):
            history(st, "deadman", detail="fired with nothing to undo", deploy=record["deploy"])
            save_state(paths, st)
            return {"changed": False, "fired": True, "reason": "nothing to undo"}
        result = do_rollback(
            ctx, st, record["from"], reason, record["deploy"], check=False, event="deadman"
        )
    return dict(result, fired=True)


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/switch_call.py


def switch(ctx, rid, deploy=None, deadman=0, deadman_mode="auto", snapshot_paths=None, keep=None,
           restart=False, check=False, retries=None, interval=None, lock=None):
    """Switch to `rid`; with `restart` and `check` also restart and run the health checks,
    putting the previous release back on the host when either fails (one agent call for the
    whole switch of a host). `snapshot_paths` (a list, maybe empty): archive them first;
    `lock`: (ttl, owner, reason) to take `deploy`'s lock in the same call."""
    paths = ctx.paths
    with guarded(paths):
        taken = lock_if_asked(paths, deploy, lock)
        report = switch_locked(ctx, rid, deploy, deadman, deadman_mode, snapshot_paths, keep)
    report["lock"] = taken["lock"] if taken else None
    part = "Restart services"
    st, _ = load_state(paths)
    gap = GapProbe(release_config(st, rid).get("port") if restart else None)
    try:
        with gap:
            if restart:
                ctx.use_env_keys(st.get("config", {}).get("env_keys"))
                report["restarted"] = restart_services(ctx, st, st["current"])
            if check:
                part = "Health checks"
                report["health"] = check_health(ctx, rid, retries, interval)["health"]
    except AgentError as exc:
        exc.extra.update(gap.report())
        raise switch_failed(ctx, rid, deploy, report, part, exc) from exc
    if restart:
        report.update(gap.report())
    return report


def switch_failed(ctx, rid, deploy, report, part, exc):
    """The error of a failed restart or health check, after putting the previous release back."""
    health_report = exc.extra.get("health")
    partial = {
        "release": rid,
        "switched": bool(report["changed"]),
        "health": health_report,
        "failed_check": (health_report or {}).get("failed_check"),
        "reverted": None,
        "revert_ok": False,
        "revert_error": None,
        "failed_part": part,
        "restart_gap_s": exc.extra.get("restart_gap_s"),
        "restart_window": exc.extra.get("restart_window"),
    }
    message = exc.message
    paths = ctx.paths
    if report["changed"]:
        try:
            with guarded(paths):
                st, _ = load_state(paths)
                reason = f"{part} failed: {exc.message}"
                if st["current"] != rid:  # the dead-man or someone else moved it already
                    reverted = {"changed": False, "from": None, "to": st["current"]}
                elif report["from"] is None and first_switch(st):
                    reverted = undo_adoption(ctx, st, reason, deploy)
                else:
                    target = report["from"] or rollback_target(st)
                    reverted = do_rollback(ctx, st, target, reason, deploy)
            partial.update(reverted=reverted, revert_ok=True)
            if reverted["to"] is None:
                message += "; back to no current release, as before oxzep7's first switch"
            else:
                message += "; back on release {}".format(reverted["to"])
        except AgentError as revert:
            partial.update(revert_error=revert.message)
            message += "; ROLLBACK INCOMPLETE: " + revert.message
    return AgentError(exc.code, message, exc.exit_status, **partial)


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/prepare.py


def prepare(ctx, req):
    """Build release req["release"] from the controller's request (see build_release)."""
    paths = ctx.paths
    rid = req["release"]
    if not _ID.match(rid):
        raise AgentError("usage", f"invalid release id {rid!r}", 3)
    root = req["root"]
    ctx.use_env_keys(req.get("config", {}).get("env_keys"))
    os.umask(0o022)
    with guarded(paths):
        st, changed = load_state(paths, root)
        st["config"] = req.get("config") or st.get("config") or {}
        rel = st["releases"].get(rid)
        path = os.path.join(root, "releases", rid)
        interp = dict(req["interpreter"])
        if (
            rel is not None
            and rel["status"] in ("prepared", "good", "live")
            and os.path.isfile(os.path.join(path, "venv", "bin", "python"))
            and (rel.get("spec") or {}).get("digest") == req["spec"].get("digest")
            and (rel.get("interpreter") or {}).get("executable") == interp["executable"]
        ):
            save_state(paths, st)
            return {"changed": changed, "release": rel, "already": True}
        if rel is not None and rel["status"] == "bad":
            raise AgentError(
                "release-bad", f"release {rid} was marked bad on this host; deploy with a new release id"
            )
        if rid == st["current"] or (rel is not None and rel["status"] in ("good", "live")):
            raise AgentError(
                "release-exists",
                "release {} is already here ({}), built from another "
                "spec or interpreter; deploy with a new release id".format(
                    rid, rel["status"] if rel else "live"
                ),
            )
        st["releases"].pop(rid, None)
        adopted = [r for r, other in st["releases"].items()
                   if other.get("adopted") and other.get("config") is None]
        for other in adopted:  # what it runs is restarted like the app, checked by none of ours
            st["releases"][other]["config"] = adopted_config(req.get("config"))
        save_state(paths, st)  # adoption (if any) is recorded before anything is built
        store_env(paths, ctx.secret_keys, [rid, *adopted], keep=set(st["releases"]) | {rid})
    check_units(ctx, (req.get("config") or {}).get("services") or [])
    started = now()
    steps = []
    try:
        build_release(ctx, req, path, interp, steps)
    except Exception as failure:
        exc = failure if isinstance(failure, AgentError) else AgentError(
            "prepare-failed", f"preparing {rid} failed: {type(failure).__name__}: {failure}")
        with guarded(paths):
            st, _ = load_state(paths, root)
            add_release(st, req, path, interp, "failed")
            st["releases"][rid]["error"] = exc.message
            set_status(st, rid, "failed")
            history(st, "prepare-failed", release=rid, deploy=req.get("deploy"), detail=exc.message)
            save_state(paths, st)
        exc.extra.setdefault("steps", steps)
        raise exc from None
    with guarded(paths):
        st, _ = load_state(paths, root)
        add_release(st, req, path, interp, "prepared")
        set_status(st, rid, "prepared")
        history(st, "prepare", release=rid, deploy=req.get("deploy"))
        save_state(paths, st)
        rel = st["releases"][rid]
    return {
        "changed": True,
        "release": rel,
        "already": False,
        "steps": steps,
        "seconds": round(now() - started, 2),
    }


def add_release(st, req, path, interp, status):
    record = new_release_record(req, path, interp, status)
    record["seq"] = next_seq(st)
    st["releases"][req["release"]] = record
    return record


def new_release_record(req, path, interp, status):
    venv = os.path.join(path, "venv")
    return {
        "id": req["release"],
        "status": status,
        "path": path,
        "adopted": False,
        "created": iso(),
        "updated": iso(),
        "deploy": req.get("deploy"),
        "interpreter": interp,
        "spec": req.get("spec"),
        "config": req.get("config"),  # its own checks, restart, env keys: rollbacks to it use them
        "values": {
            "python": interp["executable"],
            "venv": venv,
            "release": path,
            "version": req.get("version") or interp.get("version"),
        },
    }


def build_release(ctx, req, path, interp, steps):
    """venv with the target interpreter, requirements, release.json, verify; AgentError if any fails."""
    env = ctx.command_env(req["release"])
    if os.path.lexists(path):
        shutil.rmtree(path)
    os.makedirs(path, 0o755)
    found = probe_interpreter(interp["executable"])
    if found is None:
        raise AgentError(
            "interpreter", "interpreter {} does not run on this host".format(interp["executable"])
        )
    want = req.get("version")
    if want and found["version"] != want:
        raise AgentError(
            "interpreter",
            "interpreter {} is Python {}, not {}".format(interp["executable"], found["version"], want),
        )
    interp["version"] = found["version"]
    venv = os.path.join(path, "venv")
    step(ctx, steps, "venv", [interp["executable"], "-m", "venv", venv], env)
    if req.get("requirements"):
        pip = [
            os.path.join(venv, "bin", "python"),
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            *list(req.get("pip_args") or []),
            "-r",
            req["requirements"],
        ]
        step(ctx, steps, "requirements", pip, env)
        pip_check(ctx, steps, venv, env)
    rel = new_release_record(req, path, interp, "prepared")
    write_json_atomic(os.path.join(path, "release.json"), release_manifest(rel), mode=0o644)
    cwd = req.get("code") if req.get("code") and os.path.isdir(req["code"]) else path
    active = dict(env, VIRTUAL_ENV=venv, PATH=os.path.join(venv, "bin") + os.pathsep + env.get("PATH", ""))
    active.pop("PYTHONHOME", None)
    for command in req.get("verify") or []:  # in the new release: its venv is the active one
        step(ctx, steps, "verify", command, active, cwd=cwd, shell=True)


def pip_check(ctx, steps, venv, env):
    """`pip check` in the new venv: a dependency set that does not hold together (a package
    needs one that is missing, or another version than the one installed, as `--no-deps` or a
    hand-edited lock leaves it) fails prepare, so the release is never switched to."""
    argv = [os.path.join(venv, "bin", "python"), "-m", "pip", "check", "--disable-pip-version-check"]
    started = now()
    rc, out = ctx.run(argv, env)
    steps.append({"step": "pip-check", "command": " ".join(argv), "rc": rc,
                  "seconds": round(now() - started, 2)})
    if rc == 0:
        return
    lines = [ln.strip() for ln in (out or "").splitlines() if ln.strip()]
    steps[-1]["output"] = out
    shown = "; ".join(lines[:10]) + (f"; and {len(lines) - 10} more" if len(lines) > 10 else "")
    raise AgentError(
        "pip-check-failed",
        "pip check failed: the release's requirements do not hold together: {} (pin the "
        "missing or conflicting packages in the requirements file; the release is not switched "
        "to)".format(shown or f"exit {rc}"),
        output=out,
        failed_command=" ".join(argv),
        pip_check=lines,
    )


def step(ctx, steps, name, argv, env, cwd=None, shell=False):
    started = now()
    rc, out = ctx.run(argv, env, cwd=cwd, shell=shell)
    shown = argv if shell else " ".join(argv)
    steps.append({"step": name, "command": shown, "rc": rc, "seconds": round(now() - started, 2)})
    if rc != 0:
        steps[-1]["output"] = out
        raise AgentError(
            f"{name}-failed",
            f"{name} failed: `{shown}` exited {rc}: {last_line(out) or '(no output)'}",
            output=out,
            failed_command=shown,
        )


def record_release(paths, rid, status):
    if status not in STATUSES:
        raise AgentError("usage", "status must be one of {}".format(", ".join(STATUSES)), 3)
    with guarded(paths):
        st, _ = load_state(paths)
        set_status(st, rid, status)
        if status == "good":
            st["last_good"] = rid
        recompute_last_good(st)
        history(st, "record", release=rid, detail=status)
        save_state(paths, st)
    return {"changed": True, "release": st["releases"][rid]}


# ----------------------------------------------------------------------------------------------
# playbooks/agent/oxzep7_host/cli.py


def state_report(paths, root=None):
    """What the host runs (read-only: an adoption is shown, not written)."""
    exists = os.path.exists(paths.state)
    if not exists and root is None:
        st = None
    else:
        st, _ = load_state(paths, root)  # adoption shown, not written: `state` changes nothing
    lock = lock_view(read_json(paths.lock))
    live = None
    if st is not None and st["current"]:
        rel = st["releases"][st["current"]]
        live = probe_interpreter(os.path.join(rel["path"], "venv", "bin", "python"))
    link = current_link(st["root"])[0] if st is not None else None
    return {
        "changed": False,
        "app": paths.app,
        "managed": exists,
        "state": st,
        "lock": lock,
        "live": live,
        "current_link": link,
        "agent_version": AGENT_VERSION,
    }


# Each command: its arguments taken from argparse's namespace here, and nowhere else.


def cmd_state(args, ctx):
    return state_report(ctx.paths, args.root)


def cmd_lock(args, ctx):
    with guarded(ctx.paths):
        return acquire_lock(ctx.paths, args.deploy, args.owner, args.reason, args.ttl)


def cmd_unlock(args, ctx):
    with guarded(ctx.paths):
        return release_lock(ctx.paths, args.deploy, args.owner, args.force)


def cmd_prepare(args, ctx):
    return prepare(ctx, json.load(sys.stdin))


def cmd_record_release(args, ctx):
    return record_release(ctx.paths, args.release, args.status)


def cmd_snapshot(args, ctx):
    return snapshot(ctx.paths, args.path, args.keep, args.deploy)


def lock_request(args):
    return (args.lock_ttl, args.lock_owner, args.lock_reason)


def cmd_switch(args, ctx):
    return switch(
        ctx, args.release, args.deploy, args.deadman, args.deadman_mode,
        snapshot_paths=(args.path or []) if args.snapshot else None, keep=args.keep,
        restart=args.restart, check=args.health, retries=args.retries, interval=args.interval,
        lock=lock_request(args),
    )


def cmd_restart(args, ctx):
    return restart(ctx)


def cmd_health(args, ctx):
    return check_health(ctx, args.release, args.retries, args.interval)


def cmd_preflight(args, ctx):
    return preflight(ctx, json.load(sys.stdin), args.root)


def cmd_arm_deadman(args, ctx):
    return arm_deadman(ctx, args.deploy, args.seconds, args.deadman_mode)


def cmd_deadman_fire(args, ctx):
    return deadman_fire(ctx, args.token)


def cmd_confirm(args, ctx):
    return confirm(ctx, args.release, args.deploy, args.prune_keep, args.unlock)


def cmd_rollback(args, ctx):
    return rollback(
        ctx, args.to, args.only_from, args.deploy, args.reason, check=not args.no_health,
        restore=not args.no_restore, retries=args.retries, interval=args.interval,
        lock=lock_request(args), unlock=args.unlock,
    )


def cmd_prune(args, ctx):
    with guarded(ctx.paths):
        return prune(ctx.paths, args.keep, args.protect)


def parser():
    top = argparse.ArgumentParser(prog="oxzep7-host", description=DESCRIPTION)
    top.add_argument("--state-dir", default=os.environ.get("OXZEP7_STATE_DIR", DEFAULT_STATE_DIR))
    sub = top.add_subparsers(dest="command")

    def command(name, func, *options):
        p = sub.add_parser(name)
        p.add_argument("--app", required=True)
        p.set_defaults(func=func)
        for option in options:
            option(p)
        return p

    def opt(*names, **kw):
        return lambda p: p.add_argument(*names, **kw)

    deadman_mode = opt("--deadman-mode", default="auto", choices=("auto", "systemd", "process"))
    health_opts = [opt("--retries", type=int), opt("--interval", type=float)]
    lock_opts = [  # take the lock for --deploy in the same call
        opt("--lock-ttl", type=int),
        opt("--lock-owner"),
        opt("--lock-reason"),
    ]
    command("state", cmd_state, opt("--root"))
    command(
        "lock",
        cmd_lock,
        opt("--deploy", required=True),
        opt("--owner", required=True),
        opt("--reason", default=""),
        opt("--ttl", type=int, required=True),
    )
    command("unlock", cmd_unlock, opt("--deploy"), opt("--owner"), opt("--force", action="store_true"))
    command("prepare", cmd_prepare)
    command(
        "record-release", cmd_record_release, opt("--release", required=True), opt("--status", required=True)
    )
    command(
        "snapshot", cmd_snapshot, opt("--path", action="append"), opt("--keep", type=int), opt("--deploy")
    )
    command(
        "switch",
        cmd_switch,
        opt("--release", required=True),
        opt("--deploy"),
        opt("--deadman", type=int, default=0),
        deadman_mode,
        opt("--snapshot", action="store_true", help="archive --path ... (keep --keep) first"),
        opt("--path", action="append"),
        opt("--keep", type=int),
        opt("--restart", action="store_true", help="then restart the services"),
        opt("--health", action="store_true", help="then the health checks; a failure switches back"),
        *health_opts,
        *lock_opts,
    )
    command("restart", cmd_restart)
    command("health", cmd_health, opt("--release"), *health_opts)
    command("preflight", cmd_preflight, opt("--root"))
    command(
        "arm-deadman",
        cmd_arm_deadman,
        opt("--deploy", required=True),
        opt("--seconds", type=int, required=True),
        deadman_mode,
    )
    command("deadman-fire", cmd_deadman_fire, opt("--token", required=True))
    command(
        "confirm",
        cmd_confirm,
        opt("--deploy"),
        opt("--release", required=True),
        opt("--prune-keep", type=int, help="then prune releases beyond this many"),
        opt("--unlock", action="store_true", help="then release --deploy's lock"),
    )
    command(
        "rollback",
        cmd_rollback,
        opt("--to"),
        opt("--only-from"),
        opt("--deploy"),
        opt("--reason"),
        opt("--no-health", action="store_true"),
        opt("--no-restore", action="store_true"),
        opt("--unlock", action="store_true", help="release --deploy's lock afterwards, success or not"),
        *health_opts,
        *lock_opts,
    )
    command("prune", cmd_prune, opt("--keep", type=int, required=True), opt("--protect", action="append"))
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    if not getattr(args, "func", None):
        parser().print_usage(sys.stderr)
        return 3
    try:
        ctx = Ctx(Paths(args.state_dir, args.app))  # fresh per call: nothing carried over
        result = args.func(args, ctx)
        document = {"ok": True}
        document.update(result)
        status = 0
    except AgentError as exc:
        document = {"ok": False, "changed": False, "code": exc.code, "error": exc.message}
        document.update(exc.extra)
        status = exc.exit_status
    except Exception as exc:
        import traceback

        document = {
            "ok": False,
            "changed": False,
            "code": "internal",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-OUTPUT_TAIL:],
        }
        status = 1
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
