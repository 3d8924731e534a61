"""The operator's Ansible configuration, found and read as `ansible-playbook` does, and the tool's
own tuning, which applies only where that configuration and the environment say nothing.

Ansible's own machinery reads the file (`ansible.config.manager.ConfigManager`) and names each
setting's variables and ini keys (its definitions, the ssh connection plugin's included), so a
setting is "said" exactly when Ansible would take it from the environment or the file.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.runner.procs import mark

# the tool's forks when neither the spec nor the user's configuration sets any
DEFAULT_FORKS = 50


@dataclass(frozen=True)
class Tuning:
    """One of the tool's settings: `variable=value` in the run's environment, unless the user's
    configuration or environment says anything about Ansible's `setting`."""

    variable: str
    value: str
    setting: str
    plugin: str | None = None  # "ssh": an option of the ssh connection plugin


def control_path_dir(uid: int | None = None) -> Path:
    """This command's ssh control directory, when the user's configuration names none."""
    return Path(f"/tmp/oxzep7-cp-{os.getuid() if uid is None else uid}") / mark()


def tuning(uid: int) -> tuple[Tuning, ...]:
    return (
        # one directory per command: its ssh masters are its own, stopped when it ends
        # (procs.end_of_command), so no other oxzep7 command's session goes with them
        Tuning("ANSIBLE_SSH_CONTROL_PATH_DIR", str(control_path_dir(uid)), "control_path_dir",
               "ssh"),
        Tuning("ANSIBLE_PIPELINING", "True", "pipelining", "ssh"),
        # a host lost after it connected must fail the run, not hang it on a live master
        Tuning("ANSIBLE_SSH_ARGS", "-o ControlMaster=auto -o ControlPersist=120s "
               "-o ServerAliveInterval=5 -o ServerAliveCountMax=3", "ssh_args", "ssh"),
        Tuning("ANSIBLE_TIMEOUT", "15", "timeout", "ssh"),
        Tuning("ANSIBLE_GATHERING", "explicit", "DEFAULT_GATHERING"),
        Tuning("ANSIBLE_RETRY_FILES_ENABLED", "False", "RETRY_FILES_ENABLED"),
        Tuning("ANSIBLE_DEPRECATION_WARNINGS", "False", "DEPRECATION_WARNINGS"),
        Tuning("ANSIBLE_SYSTEM_WARNINGS", "False", "SYSTEM_WARNINGS"),
        Tuning("ANSIBLE_INTERPRETER_PYTHON", "auto_silent", "INTERPRETER_PYTHON"),
        Tuning("ANSIBLE_FORCE_COLOR", "False", "ANSIBLE_FORCE_COLOR"),
        Tuning("ANSIBLE_NOCOLOR", "True", "ANSIBLE_NOCOLOR"),
    )


def ansible_config_file(env: Mapping[str, str]) -> Path | None:
    """The ansible.cfg `ansible-playbook` run from here would read: ANSIBLE_CONFIG, ./ansible.cfg
    (unless the directory is world-writable), ~/.ansible.cfg, /etc/ansible/ansible.cfg."""
    candidates: list[Path] = []
    if "ANSIBLE_CONFIG" in env:
        path = Path(env["ANSIBLE_CONFIG"]).expanduser()
        candidates.append(path / "ansible.cfg" if path.is_dir() else path)
    try:
        cwd = Path.cwd()
        if not cwd.stat().st_mode & stat.S_IWOTH:
            candidates.append(cwd / "ansible.cfg")
    except OSError:
        pass
    home = env.get("HOME")
    if home:
        candidates.append(Path(home) / ".ansible.cfg")
    candidates.append(Path("/etc/ansible/ansible.cfg"))
    found = next((p for p in candidates if p.is_file() and os.access(p, os.R_OK)), None)
    return found.resolve() if found is not None else None


def _process_config(file: Path | None) -> Any:
    """Ansible's own reading of its configuration in this process (`ansible.constants.config`),
    when something here has already loaded it (the inventory does) and it read the same file
    this environment names: reading base.yml and the file again costs ~0.05 s each time."""
    constants = sys.modules.get("ansible.constants")
    manager = getattr(constants, "config", None)
    if manager is None:
        return None
    theirs = getattr(manager, "_config_file", None)
    try:
        same = (Path(theirs).resolve() if theirs else None) == file
    except (OSError, TypeError):
        return None
    return manager if same else None


def _builtin_option_docs(plugin: str) -> bool:
    """Give Ansible's configuration the option definitions of its built-in connection `plugin`
    as its plugin loader does (the same YAML, loader, tags and doc fragments), read from the
    plugin's source instead of importing it: the import pulls in `ansible.playbook` (~0.1 s of
    `plan`). False when that is not certain to be the plugin Ansible would load (a plugin of
    that name in a configured plugin path) or anything differs; the caller then imports it."""
    import ast
    import re

    import ansible
    import ansible.constants as C

    if C.config.has_configuration_definition("connection", plugin):
        return True
    try:
        for directory in C.DEFAULT_CONNECTION_PLUGIN_PATH or ():
            if (Path(directory) / f"{plugin}.py").exists():
                return False
        source = Path(ansible.__file__).parent / "plugins" / "connection" / f"{plugin}.py"
        found = re.search(r'^DOCUMENTATION = (r?""".*?^""")', source.read_text(), re.S | re.M)
        if found is None:
            return False
        text = ast.literal_eval(found.group(1))
        import yaml
        from ansible._internal._datatag import _tags
        from ansible.parsing.yaml.loader import AnsibleLoader
        from ansible.plugins.loader import fragment_loader
        from ansible.utils.plugin_docs import add_fragments

        doc = yaml.load(_tags.Origin(path=str(source)).tag(_tags.TrustedAsTemplate().tag(text)),
                        Loader=AnsibleLoader)
        add_fragments(doc, str(source), fragment_loader=fragment_loader, is_module=False)
        options = doc.get("options")
        if not isinstance(options, dict):
            return False
    except Exception:  # another Ansible than the one this was written against: its own way
        return False
    C.config.initialize_plugin_configuration_definitions("connection", plugin, options)
    return True


class AnsibleConfig:
    """What the environment and the ansible.cfg found from here say, setting by setting."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.file = ansible_config_file(self.env)
        shared = _process_config(self.file) if env is None else None
        if shared is not None:
            self._manager = shared
            self._plugins: set[str] = set()
            return
        from ansible.config.manager import ConfigManager  # Ansible loads on first use

        try:
            self._manager = ConfigManager(conf_file=str(self.file) if self.file else None)
        except Exception as exc:  # Ansible's own errors: a file it cannot parse
            raise UsageError(
                f"cannot read Ansible's configuration {self.file}: {exc}",
                hint="fix the file (ansible-playbook would refuse it too), or point "
                     "ANSIBLE_CONFIG at another one") from None
        self._plugins = set()

    def _definition(self, setting: str, plugin: str | None) -> Mapping[str, Any]:
        if plugin is None:
            return dict(self._manager.get_configuration_definitions().get(setting, {}))
        if plugin not in self._plugins:
            import ansible.constants as C

            if not _builtin_option_docs(plugin):
                from ansible.plugins.loader import connection_loader

                connection_loader.get(plugin, class_only=True)  # loads the plugin's option docs
            defs = C.config.get_configuration_definitions("connection", plugin)
            self._manager.initialize_plugin_configuration_definitions("connection", plugin, defs)
            self._plugins.add(plugin)
        return dict(self._manager.get_configuration_definitions("connection", plugin)
                    .get(setting, {}))

    def lookup(self, setting: str, plugin: str | None = None) -> tuple[Any, str]:
        """(value, origin): origin `env: VARIABLE`, the config file's path, or `default`."""
        definition = self._definition(setting, plugin)
        for entry in definition.get("env", []):
            name = entry["name"]
            if name in self.env:
                from ansible.config.manager import ensure_type

                return ensure_type(self.env[name], definition.get("type")), f"env: {name}"
        if self.file is None:
            return definition.get("default"), "default"
        kind = {"plugin_type": "connection", "plugin_name": plugin} if plugin else {}
        value, origin = self._manager.get_config_value_and_origin(
            setting, cfile=str(self.file), **kind)
        if str(origin).startswith("env:"):  # in os.environ but not in this environment
            return definition.get("default"), "default"
        return value, str(origin)

    def says(self, setting: str, plugin: str | None = None) -> bool:
        """Whether the environment or the config file sets `setting` at all."""
        return self.lookup(setting, plugin)[1] != "default"

    def forks(self, spec_forks: int | None = None) -> tuple[int, str]:
        """(forks, origin): the spec's ansible.forks when set, else the configuration's, else
        the tool's 50."""
        if spec_forks is not None:
            return spec_forks, "spec ansible.forks"
        value, origin = self.lookup("DEFAULT_FORKS")
        if origin == "default":
            return DEFAULT_FORKS, "oxzep7-deploy's default"
        return int(value), origin

    def inventory(self) -> tuple[tuple[str, ...], str]:
        """(sources, origin): the inventory `ansible-playbook` uses without -i: ANSIBLE_INVENTORY,
        `inventory =` (relative to the config file), else /etc/ansible/hosts."""
        value, origin = self.lookup("DEFAULT_HOST_LIST")
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return tuple(str(Path(v).expanduser()) for v in value or ()), origin

    def collections_paths(self) -> tuple[str, ...]:
        """The collections path `ansible-playbook` would search: ANSIBLE_COLLECTIONS_PATH or
        `collections_path =`, else Ansible's default (under ANSIBLE_HOME, then /usr/share)."""
        value, origin = self.lookup("COLLECTIONS_PATHS")
        if origin == "default" or not value:
            home = self.env.get("ANSIBLE_HOME", "~/.ansible")
            value = [f"{home}/collections", "/usr/share/ansible/collections"]
        if isinstance(value, str):
            value = value.split(os.pathsep)
        return tuple(str(Path(v).expanduser()) for v in value if v)

    def tuned_env(self, uid: int | None = None) -> dict[str, str]:
        """The tool's tuning, only for settings the environment and config file leave unsaid."""
        uid = os.getuid() if uid is None else uid
        return {t.variable: t.value for t in tuning(uid) if not self.says(t.setting, t.plugin)}

    def effective(self, spec_forks: int | None = None, become: bool = True) -> dict[str, Any]:
        """What a run gets, with where each value comes from: for `plan`."""
        tuned = self.tuned_env()

        def setting(name: str, plugin: str | None = None, variable: str | None = None
                    ) -> dict[str, Any]:
            if variable and variable in tuned:
                return {"value": tuned[variable], "from": "oxzep7-deploy"}
            value, origin = self.lookup(name, plugin)
            return {"value": value, "from": origin}

        forks, forks_from = self.forks(spec_forks)
        return {
            "config_file": str(self.file) if self.file else None,
            "remote_user": setting("remote_user", "ssh"),
            "become": {"value": become, "from": "spec ansible.become"},
            "become_method": setting("DEFAULT_BECOME_METHOD"),
            "forks": {"value": forks, "from": forks_from},
            "host_key_checking": setting("host_key_checking", "ssh"),
            "timeout": setting("timeout", "ssh", "ANSIBLE_TIMEOUT"),
            "private_key_file": setting("private_key_file", "ssh"),
        }
