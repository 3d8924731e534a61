"""Ansible inventory -> hosts and groups, through Ansible's own inventory code."""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oxzep7_deploy.errors import InventoryError

# How this process reads inventories, where the user's configuration (environment or ansible.cfg)
# says nothing: an inventory Ansible cannot parse is an error, not a warning, and so is one file
# of an inventory directory (its hosts would be missing); the INI parser before YAML's, so a
# broken INI file is reported by it. Set on Ansible's constants in this process only, never in
# the environment that the playbook runs inherit.
_STRICT: dict[str, object] = {
    "INVENTORY_UNPARSED_IS_FAILED": True,
    "INVENTORY_ANY_UNPARSED_IS_FAILED": True,
    "LOCALHOST_WARNING": False,
    "INVENTORY_ENABLED": ["host_list", "ini", "yaml", "toml", "script", "auto"],
}


def _strict_reading() -> None:
    from ansible import constants as C

    for name, value in _STRICT.items():
        if C.config.get_config_value_and_origin(name)[1] == "default":
            setattr(C, name, value)


class Inventory:
    """The hosts of one or more inventory sources, with Ansible's patterns and variables."""

    def __init__(self, sources: tuple[str, ...], manager: Any, loader: Any = None) -> None:
        self.sources = sources
        self._manager = manager
        self._loader = loader if loader is not None else manager._loader
        self._file_vars: dict[tuple[Any, str], Mapping[str, Any]] = {}
        self._vars_dirs: bool | None = None  # any group_vars/ or host_vars/ beside a source

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host, in inventory order."""
        return tuple(h.name for h in self._manager.get_hosts("all"))

    def select(self, pattern: str) -> tuple[str, ...]:
        """Hosts matching an Ansible pattern ("web", "web:&prod", "h1,h2"), in inventory order.

        Stricter than Ansible, which warns and goes on: every name in the pattern must match a
        host or a group (`web1,wbe2` is a typo, not one host), and a pattern Ansible reads only
        in part (`web[`, whose `[` it drops) is refused, since the rest may mean every host.
        """
        hint = "patterns are Ansible's: 'web', 'web:&prod', 'web:!db', 'h1,h2', '~regex'"
        terms = self._terms(pattern, hint)
        try:
            hosts = self._manager.get_hosts(pattern)
        except Exception as exc:  # Ansible raises its own error types for bad patterns
            raise InventoryError(
                f"inventory {self._label()}: bad host pattern {pattern!r}: {exc}", hint=hint,
            ) from exc
        if not self.hosts and not hosts:
            raise InventoryError(
                f"inventory {self._label()} has no hosts",
                hint="an INI inventory lists hosts one a line, under a [group] line",
            )
        unknown = [term for term in terms if not self._matches(term)]
        if unknown and len(terms) > 1:
            bare = [term[1:] if term[:1] in ("&", "!") else term for term in unknown]
            close = difflib.get_close_matches(bare[0], [*self.groups(), *self.hosts], n=1)
            raise InventoryError(
                f"inventory {self._label()}: {', '.join(map(repr, bare))} in {pattern!r} "
                f"match{'es' if len(unknown) == 1 else ''} no host or group",
                hint=(f"did you mean {close[0]!r}? " if close else "") + self._groups_hint(),
            )
        if not hosts:
            close = difflib.get_close_matches(pattern, [*self.groups(), *self.hosts], n=1)
            raise InventoryError(
                f"inventory {self._label()}: no host matches {pattern!r}",
                hint=(f"did you mean {close[0]!r}? " if close else "") + self._groups_hint(),
            )
        implicit = [h.name for h in hosts if getattr(h, "implicit", False)]
        if implicit:  # Ansible's implicit localhost: this controller, not a host of the inventory
            raise InventoryError(
                f"inventory {self._label()}: {pattern!r} selects {implicit[0]}, which the "
                "inventory does not list: that would be this controller itself",
                hint="list it in the inventory (e.g. `localhost ansible_connection=local`) if "
                     "this machine is really a target",
            )
        return tuple(h.name for h in hosts)

    def _terms(self, pattern: str, hint: str) -> list[str]:
        """The names Ansible reads in `pattern`; an error if it would drop part of what is written."""
        from ansible.inventory.manager import split_host_pattern

        terms: list[str] = split_host_pattern(pattern)
        written, read = (re.sub(r"[\s,:]", "", text) for text in (pattern, "".join(terms)))
        if not terms or written != read or any(term.lstrip("&!") in ("", "~") for term in terms):
            raise InventoryError(
                f"inventory {self._label()}: {pattern!r} is not a host pattern Ansible reads as written"
                + (f" (it reads {':'.join(terms)!r})" if terms and written != read else ""),
                hint=hint + "; a bracket opens a range such as web[0:2]",
            )
        return terms

    def _matches(self, term: str) -> bool:
        """Whether one term of a pattern names something: a host, or a group even if empty."""
        name = term[1:] if term[:1] in ("&", "!") else term
        if name == "all" or name in self._manager.groups:
            return True
        try:
            return bool(self._manager.get_hosts(name))
        except Exception:  # the whole pattern was read: a part of it is not worse
            return True

    def _groups_hint(self) -> str:
        return f"groups there: {', '.join(self.groups()) or '(none)'}"

    def groups(self) -> tuple[str, ...]:
        return tuple(sorted(g for g in self._manager.groups if g not in ("all", "ungrouped")))

    def inventory_var(self, host: str, name: str) -> Any:
        """A variable the inventory sets for a host or one of its groups, as Ansible ranks them.

        From the inventory files and from group_vars/ and host_vars/ beside them; a Jinja
        template (`{{ … }}`) counts as unset, since only a play can fill it in.
        """
        h = self._manager.get_host(host)
        if h is None:
            raise InventoryError(f"inventory {self._label()}: no host {host!r}")
        groups = sorted(h.get_groups(), key=lambda g: (g.depth, g.priority, g.name), reverse=True)
        # Ansible's order, strongest first: host_vars/, the host's line, group_vars/ (deeper
        # groups first), then the groups' vars in the inventory file. h.vars, not get_vars():
        # its magic variables cost, and `plan` asks this of every one of 10,000 hosts
        if self._has_vars_dirs():
            layers = [self._vars_files(h), h.vars, *(self._vars_files(g) for g in groups)]
        else:
            layers = [h.vars]
        layers += [g.vars for g in groups]
        for layer in layers:
            if name in layer:
                value = layer[name]
                return None if isinstance(value, str) and "{{" in value else value
        return None

    def _vars_files(self, entity: Any) -> Mapping[str, Any]:
        """What group_vars/ or host_vars/ beside the inventory sources say of a host or group."""
        from ansible.errors import AnsibleError
        from ansible.inventory.host import Host
        from ansible.vars.plugins import get_vars_from_inventory_sources

        if not self._has_vars_dirs():  # the common case, and 10,000 hosts ask: answer at once
            return {}
        key = (entity.base_type, entity.name)
        if key not in self._file_vars:
            sources = [s for s in self.sources if "," not in s or Path(s).exists()]
            try:
                found = get_vars_from_inventory_sources(self._loader, sources, [entity], "task")
            except AnsibleError as exc:  # a broken group_vars/ or host_vars/ file
                folder = "host_vars" if isinstance(entity, Host) else "group_vars"
                cause = str(exc).strip().splitlines()[0]
                hint = f"fix {folder}/{entity.name}* beside the inventory: Ansible fails on it too"
                if "vault" in cause.lower():
                    hint = ("it is vault-encrypted: name the vault password file as ansible-playbook "
                            "reads it (ANSIBLE_VAULT_PASSWORD_FILE, or vault_password_file / "
                            "vault_identity_list in ansible.cfg); there is no --ask-vault-pass")
                raise InventoryError(
                    f"inventory {self._label()}: {folder}/{entity.name} cannot be read: {cause}",
                    hint=hint,
                ) from exc
            self._file_vars[key] = found or {}
        return self._file_vars[key]

    def _has_vars_dirs(self) -> bool:
        """Whether Ansible's host_group_vars plugin has anything to read: a group_vars/ or
        host_vars/ folder in the folder of a source (or in a source that is a folder)."""
        if self._vars_dirs is None:
            bases = []
            for source in self.sources:
                path = Path(source)
                if path.exists():
                    bases.append(path if path.is_dir() else path.parent)
            self._vars_dirs = any((b / d).is_dir() for b in bases for d in ("group_vars", "host_vars"))
        return self._vars_dirs

    def _label(self) -> str:
        return ", ".join(self.sources)


def _vault_secrets(loader: Any) -> None:
    """The vault passwords ansible-playbook would read without asking (vault_password_file and
    vault_identity_list of its configuration): vaulted group_vars/ and host_vars/ (e.g. an
    ansible_become_password) are read here as they are in the runs."""
    from ansible import constants as C
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import get_file_vault_secret

    slugs = list(C.DEFAULT_VAULT_IDENTITY_LIST or [])
    if C.DEFAULT_VAULT_PASSWORD_FILE:
        slugs.append(str(C.DEFAULT_VAULT_PASSWORD_FILE))
    secrets = []
    for slug in slugs:
        name, _, value = slug.partition("@") if "@" in slug else ("", "", slug)
        if value in ("prompt", "prompt_ask_vault_pass"):  # only a terminal prompt has it
            continue
        vault_id = name or C.DEFAULT_VAULT_IDENTITY
        try:
            secret = get_file_vault_secret(filename=value, vault_id=vault_id, loader=loader)
            secret.load()
        except AnsibleError as exc:
            raise InventoryError(
                f"vault password file {value}: {str(exc).strip().splitlines()[0]}",
                hint="fix ANSIBLE_VAULT_PASSWORD_FILE or vault_password_file / vault_identity_list "
                     "in ansible.cfg: ansible-playbook fails on it too",
            ) from exc
        secrets.append((vault_id, secret))
    if secrets:
        loader.set_vault_secrets(secrets)


def load_inventory(*sources: str | Path) -> Inventory:
    """Parse inventory sources (files, directories, or 'h1,h2,' host lists) as Ansible does."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    _strict_reading()
    names = tuple(str(s) for s in sources)
    failures = _capture_parse_failures()
    for name in names:
        if not name.strip():
            raise InventoryError("inventory '': an empty -i names no inventory",
                                 hint="pass -i with an INI or YAML inventory file, a directory, "
                                      "or 'h1,h2,'")
        if "," not in name and not Path(name).exists():
            looks_like_a_host = "/" not in name and not name.endswith((".ini", ".yml", ".yaml"))
            raise InventoryError(
                f"inventory {name}: no such file or directory",
                hint=(f"for the host {name} itself, write -i '{name},' (a trailing comma makes a "
                      "host list)") if looks_like_a_host else
                     "pass -i with an INI or YAML inventory file, a directory, or 'h1,h2,'",
            )
    try:
        loader = DataLoader()
        _vault_secrets(loader)
        manager = InventoryManager(loader=loader, sources=list(names))
    except AnsibleError as exc:
        raise _parse_error(names, exc, failures) from exc
    return Inventory(names, manager, loader)


def _parse_error(names: tuple[str, ...], exc: BaseException,
                 failures: list[tuple[str, BaseException]]) -> InventoryError:
    """Which file Ansible could not parse, at which line, and why: from the failure of the
    plugin meant for that file (ini for most files, yaml for .yml), not of every plugin tried."""
    source = re.search(r"inventory source (.+)$", str(exc))
    path = source.group(1).strip() if source else None
    mine = [(plugin, e) for plugin, e in failures if path is None or _origin(e)[0] in (None, path)]
    if not mine:
        return InventoryError(f"inventory {path or ', '.join(names)}: cannot be parsed: {exc}",
                              hint="check it with: ansible-inventory -i INVENTORY --graph")
    suffix = Path(path or _origin(mine[0][1])[0] or "").suffix.lower()
    wanted = {".yml": ("yaml", "auto"), ".yaml": ("yaml", "auto"), ".json": ("yaml", "auto"),
              ".toml": ("toml",)}.get(suffix, ("ini", "script"))
    plugin, chosen = min(mine, key=lambda f: wanted.index(f[0]) if f[0] in wanted else len(wanted))
    where, line, col = _origin(chosen)
    where = where or path or ", ".join(names)
    what = _reason(chosen)
    text = _line_text(where, line)
    if text and text not in what:
        what = (f"{what.rstrip('.')}; the line reads `{text}`"
                if not (text.startswith("[") and not text.endswith("]"))
                else f"`{text}` opens a [section] that is not closed with ]")
    at = f"{where}:{line}" + (f":{col}" if col else "") if line else where
    return InventoryError(
        f"inventory {at}: cannot be parsed ({'INI' if plugin == 'ini' else plugin}): {what}",
        hint=(f"fix line {line} of {where}" if line else f"fix {where}")
             + f"; `ansible-inventory -i {where} --graph` shows how Ansible reads it",
    )


def _chain(exc: BaseException | None) -> list[BaseException]:
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _origin(exc: BaseException) -> tuple[str | None, int | None, int | None]:
    """The file, line and column an Ansible parse failure points at, where it says."""
    path: str | None = None
    for e in _chain(exc):
        line = getattr(e, "_oxzep7_line", None)  # the INI line, which Ansible forgets
        if line:
            return path, int(line), None
        origin = _tagged_origin(getattr(e, "obj", None))
        if origin is not None:
            path = path or getattr(origin, "path", None)
            if getattr(origin, "line_num", None):
                return path, origin.line_num, getattr(origin, "col_num", None)
    return path, None, None


def _tagged_origin(obj: Any) -> Any:
    if obj is None:
        return None
    try:
        from ansible._internal._datatag._tags import Origin  # Ansible >= 2.19
    except ImportError:
        return None
    return obj if isinstance(obj, Origin) else Origin.get_tag(obj)


def _reason(exc: BaseException) -> str:
    """The innermost message that says something (not "Failed to parse inventory.")."""
    for e in reversed(_chain(exc)):
        text = str(getattr(e, "_original_message", None) or e).strip().splitlines()
        if text and text[0] and not text[0].startswith(("while parsing", "Failed to parse")):
            break
    else:
        text = [str(exc)]
    reason = text[0].removeprefix("Failed to parse inventory: ")
    # `found "<class '..._AnsibleTaggedList'>"` says `found "list"`
    return re.sub(r"<class '(?:[\w.]*\.)?_?(?:AnsibleTagged)?(\w+)'>",
                  lambda m: m.group(1).lower(), reason)


def _line_text(path: str, line: int | None) -> str:
    if not line:
        return ""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _capture_parse_failures() -> list[tuple[str, BaseException]]:
    """Keep Ansible's warnings off the screen; the parse failures it reports as warnings,
    (plugin, exception), become our own message."""
    from ansible.utils.display import Display

    display = Display()
    captured: list[tuple[str, BaseException]] | None = getattr(display, "_oxzep7_failures", None)
    if captured is None:  # the first time: hook in (an empty list is the same list next time)
        captured = display._oxzep7_failures = []
        _remember_ini_lines()

        def warning(msg: str, *args: Any, **kwargs: Any) -> None:
            pass

        def error_as_warning(msg: str, exception: BaseException | None = None, **kw: Any) -> None:
            plugin = re.search(r"with '(\w+)' plugin", msg or "")
            if exception is not None:
                captured.append((plugin.group(1) if plugin else "", exception))

        display.warning = warning
        display.error_as_warning = error_as_warning
    captured.clear()
    return captured


def _remember_ini_lines() -> None:
    """Ansible's INI parser knows the line it failed on, then forgets it before it says why:
    keep it on the exception."""
    try:
        from ansible.plugins.inventory.ini import InventoryModule
    except ImportError:
        return
    parse = InventoryModule._parse

    def _parse(self: Any, lines: Any) -> Any:
        try:
            return parse(self, lines)
        except Exception as exc:
            origin = getattr(self, "_origin", None)
            with contextlib.suppress(AttributeError):
                exc._oxzep7_line = getattr(origin, "line_num", None)  # type: ignore[attr-defined]
            raise

    InventoryModule._parse = _parse
