"""Every example spec is a test: valid ones load, invalid ones fail exactly as their comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxzep7_deploy.errors import SpecError
from oxzep7_deploy.spec import load_spec, validate_file
from tests.unit.spec.examples import INVALID, PROBLEM, REPO, VALID, expectations


def test_there_are_examples_of_both_kinds() -> None:
    assert len(VALID) >= 7
    assert len(INVALID) >= 40


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_loads(path: Path) -> None:
    assert validate_file(path) == []
    spec = load_spec(path)
    assert spec.name and len(spec.digest) == 64


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_reports_exactly_what_it_expects(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect: PATH: message' line"
    problems = validate_file(path)
    parsed = []
    for problem in problems:
        match = PROBLEM.match(problem)
        assert match, f"not SPEC:LINE:COL: PATH: message: {problem!r}"
        assert match["source"] == str(path)
        parsed.append((match["path"], match["message"]))
    unmatched = [
        (want_path, want) for want_path, want in expected
        if not any(path_ == want_path and want in message for path_, message in parsed)
    ]
    unexpected = [
        (path_, message) for path_, message in parsed
        if not any(path_ == want_path and want in message for want_path, want in expected)
    ]
    assert not unmatched, f"expected but not reported: {unmatched}\nreported: {problems}"
    assert not unexpected, f"reported but not expected: {unexpected}"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_refuses_to_load(path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert list(caught.value.problems) == validate_file(path)


def test_the_spec_that_init_writes_is_valid() -> None:
    scaffold = REPO / "oxzep7_deploy" / "data" / "init-spec.yaml"
    assert validate_file(scaffold) == []
