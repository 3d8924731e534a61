"""Ansible inventory -> hosts and groups, through Ansible's own inventory code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from oxzep7_deploy.errors import InventoryError

# Before ansible reads its configuration: an inventory it cannot parse is an error, not a warning.
os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
os.environ.setdefault("ANSIBLE_INVENTORY_ENABLED", "host_list,ini,yaml,toml,script,auto")


class Inventory:
    """The hosts of one or more inventory sources, with Ansible's patterns and variables."""

    def __init__(self, sources: tuple[str, ...], manager: Any) -> None:
        self.sources = sources
        self._manager = manager

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host, in inventory order."""
        return tuple(h.name for h in self._manager.get_hosts("all"))

    def select(self, pattern: str) -> tuple[str, ...]:
        """Hosts matching an Ansible pattern ("web", "web:&prod", "h1,h2"), in inventory order."""
        try:
            hosts = self._manager.get_hosts(pattern)
        except Exception as exc:  # Ansible raises its own error types for bad patterns
            raise InventoryError(
                f"inventory {self._label()}: bad host pattern {pattern!r}: {exc}",
                hint="patterns are Ansible's: 'web', 'web:&prod', 'web:!db', 'h1,h2'",
            ) from exc
        if not hosts:
            raise InventoryError(
                f"inventory {self._label()}: no host matches {pattern!r}",
                hint=f"groups there: {', '.join(self.groups()) or '(none)'}",
            )
        return tuple(h.name for h in hosts)

    def groups(self) -> tuple[str, ...]:
        return tuple(sorted(g for g in self._manager.groups if g not in ("all", "ungrouped")))

    def inventory_var(self, host: str, name: str) -> Any:
        """A variable set in the inventory itself for a host or one of its groups (host wins).

        Cheap enough for 10,000 hosts: it does not run vars plugins (group_vars/ folders).
        """
        h = self._manager.get_host(host)
        if h is None:
            raise InventoryError(f"inventory {self._label()}: no host {host!r}")
        own = h.get_vars()
        if name in own:
            return own[name]
        for group in sorted(h.get_groups(), key=lambda g: (g.depth, g.priority), reverse=True):
            if name in group.vars:
                return group.vars[name]
        return None

    def _label(self) -> str:
        return ", ".join(self.sources)


def load_inventory(*sources: str | Path) -> Inventory:
    """Parse inventory sources (files, directories, or 'h1,h2,' host lists) as Ansible does."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    names = tuple(str(s) for s in sources)
    warnings = _capture_ansible_warnings()
    for name in names:
        if "," not in name and not Path(name).exists():
            raise InventoryError(
                f"inventory {name}: no such file or directory",
                hint="pass -i with an INI or YAML inventory file, a directory, or 'h1,h2,'",
            )
    try:
        manager = InventoryManager(loader=DataLoader(), sources=list(names))
    except AnsibleError as exc:
        causes = [w for w in warnings if "Failed to parse inventory:" in w] or [str(exc)]
        cause = causes[-1].split("Failed to parse inventory:")[-1].strip().splitlines()[0]
        raise InventoryError(
            f"inventory {', '.join(names)}: cannot be parsed: {cause}",
            hint="check it with: ansible-inventory -i INVENTORY --graph",
        ) from exc
    return Inventory(names, manager)


def _capture_ansible_warnings() -> list[str]:
    """Keep Ansible's warnings off the screen; known ones become part of our own messages."""
    from ansible.utils.display import Display

    display = Display()
    captured: list[str] = getattr(display, "_oxzep7_warnings", None) or []
    if not hasattr(display, "_oxzep7_warnings"):
        display._oxzep7_warnings = captured

        def warning(msg: str, *args: Any, **kwargs: Any) -> None:
            captured.append(str(msg))

        def error_as_warning(msg: str, exception: BaseException | None = None, **kw: Any) -> None:
            captured.append(f"{msg} Failed to parse inventory: {exception}" if exception else msg)

        display.warning = warning
        display.error_as_warning = error_as_warning
    captured.clear()
    return captured
