"""`plan` says when the strategy overrides a setting of the spec."""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli.test_cli import invoke

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: app-py313
targets: all
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: app, root: /srv/app}
rollout: {strategy: blue-green, prestage: %s}
"""


def test_blue_green_with_prestage_off_says_it_prestages_anyway(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[app]\na1\na2\n")
    lines = {}
    for prestage in ("false", "true"):
        spec = tmp_path / f"spec-{prestage}.yaml"
        spec.write_text(SPEC % prestage)
        code, out, _ = invoke("plan", str(spec), "-i", str(tmp_path / "inv.ini"))
        assert code == 0
        lines[prestage] = out
    assert "prestage: interpreter and release prepared on a1, a2" in lines["false"]
    assert "rollout.prestage: false does not apply" in lines["false"]
    assert "does not apply" not in lines["true"]
