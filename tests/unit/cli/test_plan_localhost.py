"""`localhost` in targets means a host the inventory lists, never Ansible's implicit one."""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli.test_plan_inventory import plan


def test_implicit_localhost_is_refused_as_the_controller_itself(tmp_path: Path) -> None:
    code, doc, _ = plan(tmp_path, "localhost")
    assert code == 2 and "that would be this controller itself" in str(doc["error"])
    assert "localhost ansible_connection=local" in str(doc.get("hint"))


def test_a_listed_localhost_is_a_host_like_any_other(tmp_path: Path) -> None:
    listed = tmp_path / "local.ini"
    listed.write_text("[here]\nlocalhost ansible_connection=local\n")
    code, doc, _ = plan(tmp_path, "localhost", str(listed))
    assert code == 0 and doc["targets"] == ["localhost"]
