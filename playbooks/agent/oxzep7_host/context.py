"""The context of one agent call (`Ctx`): the app's paths and the names of application.env
variables whose values are redacted from every output the agent reports; commands run with
the release's stored env."""

import contextlib
import os
import signal
import subprocess

from .base import OUTPUT_TAIL
from .files import read_json, write_json_atomic

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
