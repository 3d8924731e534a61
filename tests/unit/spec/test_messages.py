"""What `validate` tells a user: every problem at once, by line, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from oxzep7_deploy.errors import ExitCode, SpecError
from oxzep7_deploy.spec import load_spec, validate_document, validate_file
from oxzep7_deploy.spec.problems import Problem, format_path
from tests.unit.spec.conftest import MINIMAL
from tests.unit.spec.examples import PROBLEM

Problems = Callable[[str], list[Problem]]

MANY_MISTAKES = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: Billing
targets: billing
interpreter:
  version: 3.13
  install:
    method: source
    url: https://www.python.org/ftp/python/3.13.5/Python-3.13.5.tar.xz
application:
  name: billing
  root: /srv/billing
  keep_releases: 1
verify: ["{pyhton} -V"]
rollout:
  strategy: canary
  stages:
    - {name: a, hosts: 5}
    - {name: b, hosts: 3}
"""


def test_every_problem_is_reported_at_once_sorted_by_line(problems_of: Problems) -> None:
    found = [(p.line, p.path) for p in problems_of(MANY_MISTAKES)]
    assert found == [
        (3, "name"),
        (6, "interpreter.version"),
        (7, "interpreter.install"),  # missing sha256
        (13, "application.keep_releases"),
        (14, "verify[0]"),
        (19, "rollout.stages[1].hosts"),  # fewer hosts than stage a
        (19, "rollout.stages[1].hosts"),  # and not 100% at the end
    ]


def test_problems_are_formatted_spec_line_col_path_message(write_spec: Callable[[str], Path]) -> None:
    path = write_spec(MANY_MISTAKES)
    lines = validate_file(path)
    assert lines[0] == (
        f"{path}:3:7: name: must be 1 to 63 lowercase letters, digits and dashes, "
        "starting with a letter or digit"
    )
    for line in lines:
        match = PROBLEM.match(line)
        assert match and match["source"] == str(path)


def test_the_spec_is_named_as_given(
    write_spec: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(MINIMAL.replace("billing-py313", "Bad"))
    monkeypatch.chdir(path.parent)
    assert validate_file("spec.yaml")[0].startswith("spec.yaml:3:7: name: ")


def test_load_spec_raises_spec_error_with_every_problem(write_spec: Callable[[str], Path]) -> None:
    path = write_spec(MANY_MISTAKES)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == tuple(validate_file(path))
    assert caught.value.exit_code is ExitCode.USAGE
    assert caught.value.message == f"{path} is not a valid spec: 7 problems"


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert validate_file(missing) == [
        f"{missing}:1:1: (root): cannot read the spec: No such file or directory"
    ]
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(missing)


def test_a_wrong_method_is_one_line_not_every_branch(problems_of: Problems) -> None:
    text = MINIMAL.replace("method: source", "method: compile")
    assert [(p.line, p.col, p.path, p.message) for p in problems_of(text)] == [
        (8, 13, "interpreter.install.method",
         "method must be one of source, package, prebuilt, existing (got 'compile')"),
    ]


@pytest.mark.parametrize("method", ["    method: compile\n", ""])
def test_a_typo_in_install_is_reported_with_a_wrong_or_missing_method(
        problems_of: Problems, method: str) -> None:
    """All errors at once: a key no method takes is a typo whatever the method turns out to be."""
    text = MINIMAL.replace("    method: source\n", method)
    text = text.replace("    sha256:", "    confgure: [x]\n    sha256:")
    found = {(p.path, p.message) for p in problems_of(text)}
    assert ("interpreter.install.confgure",
            "unknown key 'confgure' (did you mean 'configure'?)") in found, found
    assert len(found) == 2, found  # and the method's own line, nothing of the four branches


def test_a_chosen_method_reports_only_its_own_branch(problems_of: Problems) -> None:
    text = MINIMAL.replace("method: source", "method: prebuilt") + ""
    text = text.replace("    sha256:", "    configure: [x]\n    sha256:")
    [problem] = problems_of(text)
    assert problem.path == "interpreter.install.configure"
    assert problem.message == (
        "unknown key 'configure' (method prebuilt does not use it; it takes url, sha256)"
    )


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("  root:", "  roots:", "application.roots", "unknown key 'roots' (did you mean 'root'?)"),
        ("kind:", "Kind:", "Kind", "unknown key 'Kind' (did you mean 'kind'?)"),
        ("targets: billing", "targets: [a, b]", "targets", "must be a string, not a list"),
        ("  root: /srv/billing", "  root:", "application.root", "must be a string, but it is empty"),
        ('"3.13.5"', "3.13", "interpreter.version",
         'must be a string in quotes, e.g. "3.13.5" (YAML reads 3.13 as a number)'),
        ("name: billing\n", "name: billing\n  keep_releases: two\n", "application.keep_releases",
         "must be a whole number, not a string"),
    ],
)
def test_messages_are_plain_words(
    problems_of: Problems, old: str, new: str, path: str, message: str
) -> None:
    assert old in MINIMAL
    found = [(p.path, p.message) for p in problems_of(MINIMAL.replace(old, new, 1))]
    assert (path, message) in found


def test_no_validator_jargon_reaches_the_user(problems_of: Problems) -> None:
    text = MINIMAL + (
        "health:\n  checks:\n    - {http: {url: 1, status: x}, command: [1]}\n    - 5\n"
        "rollout: {stages: [{name: 1, hosts: true, bake: [], promote: 0}], max_failed: x}\n"
        "snapshot: {paths: 5, keep: '1'}\nansible: {forks: 1.5, become: null}\n"
    )
    problems = problems_of(text)
    assert len(problems) == 14
    assert ("health.checks[1]", "must be a mapping, not a number (5)") in [
        (p.path, p.message) for p in problems
    ]
    for problem in problems:
        for jargon in ("is not valid under", "is not of type", "does not match", "required property",
                       "Additional properties", "should not be valid", "was expected"):
            assert jargon not in problem.message, problem


def test_a_problem_at_the_same_path_is_reported_once(problems_of: Problems) -> None:
    # The stage's hosts fail the schema; the stage rules do not report it again.
    text = MINIMAL + "rollout:\n  stages:\n    - {name: all, hosts: 0}\n"
    assert [p.path for p in problems_of(text)] == ["rollout.stages[0].hosts"]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "(root)"),
        (("rollout", "stages", 1, "hosts"), "rollout.stages[1].hosts"),
        (("application", "env", "MY_VAR"), "application.env.MY_VAR"),
        (("application", "env", "a b"), 'application.env["a\\u0020b"]'),
        ((0,), "[0]"),
    ],
)
def test_paths_read_like_the_spec(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_validate_document_gives_structured_problems(write_spec: Callable[[str], Path]) -> None:
    [problem] = validate_document(write_spec(MINIMAL.replace("billing-py313", "x_y")))
    assert problem.as_dict() == {
        "line": 3, "col": 7, "path": "name", "message": problem.message,
    }


def test_digits_in_quotes_where_a_number_is_allowed_say_to_drop_the_quotes(
    problems_of: Problems,
) -> None:
    text = MINIMAL + 'rollout:\n  dead_man: "300"\n  max_failed: "1"\n'
    assert [(p.path, p.message) for p in problems_of(text)] == [
        ("rollout.dead_man", 'must be a duration such as "30s", "5m", "1h" or "1h30m", or a whole '
                             "number of seconds (write 300 without quotes)"),
        ("rollout.max_failed", 'must be a number of hosts (0 or more) or a percentage of the '
                               'targets from "0%" to "100%" (write 1 without quotes)'),
    ]
