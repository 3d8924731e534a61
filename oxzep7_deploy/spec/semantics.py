"""The rules of docs/spec.md that a JSON Schema cannot say: stages, placeholders, safe paths.

Each check reads the raw document defensively: a value of the wrong type is the schema's to
report, so a check skips what it cannot read rather than report it twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from oxzep7_deploy.rules import normalize_path, prefix_problem
from oxzep7_deploy.spec.durations import parse_duration
from oxzep7_deploy.spec.model import HostCount
from oxzep7_deploy.spec.placeholders import PLACEHOLDERS, describe_allowed, find_placeholders
from oxzep7_deploy.spec.problems import Issue, Path

# Directories that are /usr on merged-/usr systems (Debian 12, RHEL 9, Ubuntu…).
_ALL = HostCount(100, percent=True)


def semantic_issues(data: Mapping[str, Any]) -> list[Issue]:
    """Every rule of the spec beyond its shape that `data` breaks."""
    issues: list[Issue] = []
    for check in (_check_prefix, _check_paths, _check_install, _check_requirements, _check_preview,
                  _check_restart, _check_watch, _check_placeholders, _check_untemplated,
                  _check_stages, _check_durations):
        issues.extend(check(data))
    return issues


def _get(data: object, *keys: str) -> Any:
    """`data[k1][k2]…`, or None where a key is missing or a level is not a mapping."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _check_prefix(data: Mapping[str, Any]) -> Iterator[Issue]:
    prefix, version = _get(data, "interpreter", "prefix"), _get(data, "interpreter", "version")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        return
    where = ("interpreter", "prefix")
    names = set(find_placeholders(prefix))
    if names - {"version"}:
        unknown = ", ".join(f"{{{name}}}" for name in sorted(names - {"version"}))
        yield Issue(where, f"unknown placeholder {unknown}: a prefix may use only {{version}}")
        return
    if isinstance(version, str):
        prefix = prefix.replace("{version}", version)
    reason = prefix_problem(prefix)  # the one rule, shared with the hosts: oxzep7_deploy/rules.py
    if reason:
        yield Issue(where, reason)


def _check_paths(data: Mapping[str, Any]) -> Iterator[Issue]:
    """Absolute paths on the hosts: no `..`, and no `/` where the tool writes or archives."""
    places: list[tuple[Path, Any, bool]] = [
        (("application", "root"), _get(data, "application", "root"), False),
        (("application", "code"), _get(data, "application", "code"), True),
        (("interpreter", "install", "executable"),
         _get(data, "interpreter", "install", "executable"), True),
    ]
    paths = _get(data, "snapshot", "paths")
    if isinstance(paths, list):
        places += [(("snapshot", "paths", i), path, False) for i, path in enumerate(paths)]
    for where, path, root_ok in places:
        if not isinstance(path, str) or not path.startswith("/"):
            continue
        if ".." in path.split("/"):
            yield Issue(where, "must not contain '..': write the path it means")
        elif normalize_path(path) == "/" and not root_ok:
            yield Issue(where, "must not be / itself")


def _check_install(data: Mapping[str, Any]) -> Iterator[Issue]:
    install = _get(data, "interpreter", "install")
    if (isinstance(install, Mapping) and install.get("method") == "source"
            and "build_host" in install and install.get("build") == "on-each-host"):
        yield Issue(("interpreter", "install", "build_host"),
                    "build_host is for build: once-per-platform; with on-each-host every host "
                    "builds its own")


def _check_requirements(data: Mapping[str, Any]) -> Iterator[Issue]:
    requirements = _get(data, "application", "requirements")
    if not isinstance(requirements, str) or not requirements:
        return
    where = ("application", "requirements")
    if requirements.startswith("/"):
        if ".." in requirements.split("/"):
            yield Issue(where, "must not contain '..': write the path it means")
    elif not isinstance(_get(data, "application", "code"), str):
        yield Issue(where, "is relative to application.code, which is not set: "
                           "set code, or give an absolute path")


def _check_preview(data: Mapping[str, Any]) -> Iterator[Issue]:
    preview = data.get("preview")
    if not isinstance(preview, Mapping) or preview.get("command") is not None:
        return
    if not _get(data, "application", "services"):
        yield Issue(("preview",), "the preview runs the ExecStart of application.services[0], "
                                  "which lists none: list the app's unit, or set preview.command")


def _check_restart(data: Mapping[str, Any]) -> Iterator[Issue]:
    services = _get(data, "application", "services")
    if _get(data, "application", "restart") == "reload" and not services:
        yield Issue(("application", "restart"),
                    "reload runs `systemctl reload` on application.services, which lists none: "
                    "list the units, or remove restart: reload")


def _check_watch(data: Mapping[str, Any]) -> Iterator[Issue]:
    if isinstance(data.get("watch"), Mapping) and not _get(data, "application", "services"):
        yield Issue(("watch",), "the watch reads the journal of application.services, which lists "
                                "none: it would watch nothing; list the app's units, or remove watch")


def _commands(data: Mapping[str, Any]) -> Iterator[tuple[Path, str]]:
    """Every text that takes placeholders, with its path."""
    verify = data.get("verify")
    if isinstance(verify, list):
        yield from ((("verify", i), command) for i, command in enumerate(verify))
    restart = _get(data, "application", "restart_command")
    if restart is not None:
        yield ("application", "restart_command"), restart
    checks = _get(data, "health", "checks")
    for i, check in enumerate(checks if isinstance(checks, list) else []):
        if isinstance(check, Mapping) and "command" in check:
            yield ("health", "checks", i, "command"), check["command"]
        if isinstance(check, Mapping) and isinstance(check.get("http"), Mapping):
            yield ("health", "checks", i, "http", "url"), check["http"].get("url")
    command = _get(data, "preview", "command")
    if command is not None:
        yield ("preview", "command"), command


def _check_placeholders(data: Mapping[str, Any]) -> Iterator[Issue]:
    has_code = isinstance(_get(data, "application", "code"), str)
    has_port = isinstance(_get(data, "application", "port"), int)
    for where, text in _commands(data):
        if not isinstance(text, str):
            continue
        names = dict.fromkeys(find_placeholders(text))
        for name in names:
            if name not in PLACEHOLDERS:
                yield Issue(where, f"unknown placeholder {{{name}}}: use one of "
                                   f"{describe_allowed()}, or write {{{{{name}}}}} for braces "
                                   "the shell should see")
            elif name == "code" and not has_code:
                yield Issue(where, "{code} is used but application.code is not set")
            elif name == "port" and not has_port and where != ("preview", "command"):
                yield Issue(where, "{port} is used but application.port is not set: "
                                   "set it to the port the app serves on")


def _untemplated(data: Mapping[str, Any]) -> Iterator[tuple[Path, Any]]:
    """Texts that are used as written: a placeholder there would reach the host literally."""
    install = ("interpreter", "install")
    for key in ("url", "executable"):
        yield (*install, key), _get(data, *install, key)
    for key in ("root", "code", "requirements"):
        yield ("application", key), _get(data, "application", key)
    for where in ((*install, "configure"), ("application", "pip_args"), ("snapshot", "paths")):
        items = _get(data, *where)
        yield from (((*where, i), item) for i, item in enumerate(items if isinstance(items, list) else []))
    env = _get(data, "application", "env")
    yield from ((("application", "env", key), value)
                for key, value in (env.items() if isinstance(env, Mapping) else []))


def _check_untemplated(data: Mapping[str, Any]) -> Iterator[Issue]:
    for where, text in _untemplated(data):
        if not isinstance(text, str):
            continue
        known = [name for name in dict.fromkeys(find_placeholders(text)) if name in PLACEHOLDERS]
        if known:
            yield Issue(where, f"{{{known[0]}}} is not filled in here: placeholders work in verify, "
                               "health and restart_command only (and {version} in interpreter.prefix); "
                               "write the value itself")


def _host_count(value: object) -> HostCount | None:
    try:
        return HostCount.parse(value)
    except ValueError:
        return None


def _check_stages(data: Mapping[str, Any]) -> Iterator[Issue]:
    """Stages are cumulative: each takes at least one more host, and the last reaches 100%."""
    stages = _get(data, "rollout", "stages")
    if _get(data, "rollout", "strategy") == "rolling" or not isinstance(stages, list):
        return
    readable = [(i, s) for i, s in enumerate(stages) if isinstance(s, Mapping)]
    seen: dict[str, int] = {}
    for i, stage in readable:
        name = stage.get("name")
        if isinstance(name, str) and name in seen:
            yield Issue(("rollout", "stages", i, "name"),
                        f"stage name '{name}' is already used by stages[{seen[name]}]")
        elif isinstance(name, str):
            seen[name] = i
    yield from _check_stage_growth(readable)
    counts = [_host_count(stage.get("hosts")) for _, stage in readable]
    if readable and readable[-1][0] == len(stages) - 1 and _ALL not in counts[:-1]:
        last, count = readable[-1][0], counts[-1]
        if count is not None and count != _ALL:
            yield Issue(("rollout", "stages", last, "hosts"),
                        f'the last stage must reach "100%" of the targets, not {count}: '
                        "hosts counts are cumulative")


def _check_stage_growth(stages: list[tuple[int, Mapping[str, Any]]]) -> Iterator[Issue]:
    """Compare each stage with the one before of the same kind (count or percentage).

    A count and a percentage cannot be compared without the inventory; `plan` does that.
    """
    last_of_kind: dict[bool, tuple[int, HostCount]] = {}
    full: int | None = None  # the stage that already reached 100%
    for i, stage in stages:
        count = _host_count(stage.get("hosts"))
        if count is None:
            continue
        where = ("rollout", "stages", i, "hosts")
        if full is not None:
            yield Issue(where, f"stages[{full}] already reaches 100%: no stage can follow it")
            continue
        before = last_of_kind.get(count.percent)
        if before is not None and count.value <= before[1].value:
            yield Issue(where, f"must be more than the {before[1]} of stages[{before[0]}]: "
                               "hosts counts are cumulative and each stage adds at least one host")
        last_of_kind[count.percent] = (i, count)
        if count == _ALL:
            full = i


def _check_durations(data: Mapping[str, Any]) -> Iterator[Issue]:
    """Durations that must not be zero."""
    places: list[tuple[Path, Any]] = [(("rollout", "lock_ttl"), _get(data, "rollout", "lock_ttl"))]
    checks = _get(data, "health", "checks")
    for i, check in enumerate(checks if isinstance(checks, list) else []):
        places.append((("health", "checks", i, "http", "timeout"),
                       _get(check, "http", "timeout")))
    for where, value in places:
        try:
            seconds = parse_duration(value)
        except ValueError:
            continue
        if seconds == 0:
            yield Issue(where, "must be longer than 0 seconds")
