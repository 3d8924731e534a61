"""Golden plans: a spec and an inventory in, the plan JSON out, reviewed as diffs.

Regenerate after an intended change with:  pytest tests/unit/plan/test_golden.py --regen-golden
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "plans"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_plan_matches_golden(case: str, request: pytest.FixtureRequest) -> None:
    spec, inventory = GOLDEN / f"{case}.yaml", GOLDEN / f"{case}.ini"
    result = CliRunner().invoke(cli, ["plan", str(spec), "-i", str(inventory), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    plan["release"] = plan["release"].split("-")[0] + "-<digest>"  # the digest follows file bytes
    # Ansible's settings depend on the machine's ansible.cfg: tests/unit/runner/test_ansible_config
    assert set(plan.pop("ansible")) >= {"config_file", "forks", "remote_user", "timeout"}
    expected_file = GOLDEN / f"{case}.plan.json"
    if request.config.getoption("--regen-golden"):
        expected_file.write_text(json.dumps(plan, indent=2) + "\n")
    if not expected_file.exists():
        pytest.fail(f"{expected_file}: no golden plan for {case}.yaml; write it with "
                    "`pytest tests/unit/plan/test_golden.py --regen-golden` and review it")
    assert plan == json.loads(expected_file.read_text())


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 3


def test_a_missing_golden_plan_fails_and_is_not_written(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for suffix in (".yaml", ".ini"):
        (tmp_path / f"canary-source{suffix}").write_bytes((GOLDEN / f"canary-source{suffix}").read_bytes())
    monkeypatch.setattr(sys.modules[__name__], "GOLDEN", tmp_path)
    no_regen = SimpleNamespace(config=SimpleNamespace(getoption=lambda name: False))
    with pytest.raises(pytest.fail.Exception, match=r"no golden plan for canary-source\.yaml"):
        test_plan_matches_golden("canary-source", no_regen)  # type: ignore[arg-type]
    assert not (tmp_path / "canary-source.plan.json").exists()
