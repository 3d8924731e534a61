"""Which python a command runs (units and cron): shell wrappers, env, venv scripts."""

import os
import re
import shlex

from .base import is_executable_file, is_python_name, shebang, venv_of, which

SHELLS = frozenset(("sh", "bash", "dash", "zsh", "ksh"))


def split_command(command):
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:
        return command.split()


def python_of_argv(argv, depth=0):
    """(python as named, how) for a command line, or (None, None) if it runs no Python.

    Looks at the program itself, `env python3 ...`, a shell's -c string, and every simple
    command of a shell line (cron), then at the shebang of scripts run directly.
    """
    commands, current = [], []
    for token in argv:
        if token in ("&&", "||", ";", "|", "&") or token.endswith(";"):
            head = token.rstrip(";")
            if head and token not in ("&&", "||", "|", "&"):
                current.append(head)
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    for command in commands:
        found = _python_of_simple(command, depth)
        if found[0]:
            return found
    return None, None


# commands that run the command after them: {name: options that take a value}
WRAPPERS = {"exec": (), "nohup": (), "time": (), "chronic": (), "nice": ("-n",),
            "ionice": ("-c", "-n"), "sudo": ("-u", "-g"), "runuser": ("-u", "-g"),
            "setpriv": (), "timeout": ("-s", "-k")}


def _strip_wrappers(words):
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value prefixes
    while words and os.path.basename(words[0]) in WRAPPERS:
        takes_value = WRAPPERS[os.path.basename(words[0])]
        timeout = os.path.basename(words[0]) == "timeout"
        words = words[1:]
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] in takes_value else words[1:]
        if timeout and words:
            words = words[1:]  # the duration
        if words and words[0] == "--":
            words = words[1:]
    return words


def _python_of_simple(argv, depth):
    words = _strip_wrappers(list(argv))
    if not words:
        return None, None
    prog = words[0].lstrip("@-:+!")
    name = os.path.basename(prog)
    if is_python_name(prog):
        return prog, "exec"
    if name == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if rest and is_python_name(rest[0]):
            return rest[0], "env"
        return None, None
    if name in SHELLS and "-c" in words and depth < 2:
        index = words.index("-c")
        if index + 1 < len(words):
            return python_of_argv(split_command(words[index + 1]), depth + 1)
    path = which(prog) if "/" not in prog else prog
    if path and os.path.isabs(path) and os.path.isfile(path):
        line = shebang(path)
        if line:
            if is_python_name(line[0]):
                return line[0], f"shebang of {path}"
            if os.path.basename(line[0]) == "env" and len(line) > 1:
                rest = [w for w in line[1:] if not w.startswith("-")]
                if rest and is_python_name(rest[0]):
                    return rest[0], f"shebang of {path}"
    return None, None


def resolve_python(named, venvs, via):
    """Where a python as named leads: its path, its venv (if any), the base interpreter's realpath."""
    path = which(named) if "/" not in named else named
    out = {"python": named, "path": path, "exists": bool(path) and is_executable_file(path),
           "venv": None, "interpreter": None}
    if not path:
        return out
    venv = venv_of(path)
    if venv:
        entry = venvs.note(venv, via)
        out["venv"] = entry["path"]
        out["interpreter"] = entry["base_realpath"] or entry["base"]
    elif out["exists"]:
        out["interpreter"] = os.path.realpath(path)
    return out
