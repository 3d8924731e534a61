"""YAML in, plain data and positions out: lines and columns, duplicates, aliases, broken YAML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from oxzep7_deploy.spec import loader, validate_file
from oxzep7_deploy.spec.loader import MAX_NODES, YamlError, load_document
from oxzep7_deploy.spec.problems import Problem
from tests.unit.spec.conftest import MINIMAL
from tests.unit.spec.examples import INVALID, VALID

Problems = Callable[[str], list[Problem]]


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc = load_document(b"a: 1\nb:\n  c: [x, 'y']\n  d:\n    - e: 2\n")
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 2}]}}
    assert doc.positions.keys[("a",)] == (1, 1)
    assert doc.positions.values[("a",)] == (1, 4)
    assert doc.positions.keys[("b", "c")] == (3, 3)
    assert doc.positions.values[("b", "c", 1)] == (3, 10)
    assert doc.positions.values[("b", "d", 0, "e")] == (5, 10)


def test_a_scalar_problem_points_at_the_value(problems_of: Problems) -> None:
    text = MINIMAL.replace("  root: /srv/billing", "  root: srv/billing")
    [problem] = problems_of(text)
    assert (problem.line, problem.col, problem.path) == (13, 9, "application.root")


def test_an_unknown_key_points_at_the_key_itself(problems_of: Problems) -> None:
    [problem] = problems_of(MINIMAL + "rollout:\n  strategy: canary\n  stagse: []\n")
    assert (problem.line, problem.col, problem.path) == (16, 3, "rollout.stagse")


def test_a_missing_key_points_at_the_key_of_its_parent(problems_of: Problems) -> None:
    text = MINIMAL + "rollout:\n  strategy: rolling\n  max_failed: 1\n"
    [problem] = problems_of(text)
    assert (problem.line, problem.col, problem.path) == (14, 1, "rollout")


def test_a_problem_in_a_flow_list_item_points_inside_the_line(problems_of: Problems) -> None:
    text = MINIMAL + 'rollout:\n  stages:\n    - {name: a, hosts: 1}\n    - {name: b, hosts: "99%"}\n'
    [problem] = problems_of(text)
    assert (problem.line, problem.col) == (17, 24)
    assert problem.path == "rollout.stages[1].hosts"
    assert problem.message.startswith('the last stage must reach "100%"')


def test_duplicate_keys_are_errors_reported_with_the_others(problems_of: Problems) -> None:
    text = MINIMAL.replace("name: billing\n", "name: billing\n  name: other\n") + "bogus: 1\n"
    found = [(p.line, p.path, p.message) for p in problems_of(text)]
    assert found == [
        (13, "application.name", "duplicate key 'name' (first at line 12): remove one of them"),
        (15, "bogus", found[1][2]),
    ]
    assert found[1][2].startswith("unknown key 'bogus'")


def test_duplicate_key_keeps_the_first_value() -> None:
    doc = load_document(b"a: 1\na: 2\n")
    assert doc.data == {"a": 1}
    assert [issue.line for issue in doc.issues] == [2]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "null\n", "~\n"])
def test_an_empty_document_is_one_clear_error(problems_of: Problems, text: str) -> None:
    [problem] = problems_of(text)
    assert (problem.path, problem.message) == ("(root)", "the spec is empty")


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n", "a list"), ("just text\n", "a string"), ("42\n", "a number (42)")]
)
def test_the_top_level_must_be_a_mapping(problems_of: Problems, text: str, kind: str) -> None:
    [problem] = problems_of(text)
    assert problem.message.endswith(f"not {kind}")


def test_anchors_aliases_and_merge_keys_are_read() -> None:
    text = b"base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b]\n"
    doc = load_document(text)
    assert doc.data["other"] == {"y": 3, "x": 1}
    assert doc.data["list"] == [{"x": 1, "y": 2}]
    assert doc.positions.keys[("other", "y")] == (4, 3)
    assert doc.positions.keys[("other", "x")] == (1, 11)  # where the merged key is written
    assert doc.issues == []


def test_a_merge_key_written_before_explicit_keys_does_not_move_them() -> None:
    doc = load_document(b"base: &b {y: 1}\nother:\n  y: 3\n  <<: *b\n")
    assert doc.data["other"] == {"y": 3}
    assert doc.positions.values[("other", "y")] == (3, 6)


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        (b"a: 1\n  b: 2\n", 2, 4, "invalid YAML: mapping values are not allowed here"),
        (b"a: [1, 2\n", 2, 1, "invalid YAML: expected ',' or ']', but got '<stream end>'"),
        (b"a:\n\t- b\n", 2, 1, "indent YAML with spaces, not tabs"),
        (b"a: 1\n---\nb: 2\n", 2, 1, "expected a single document in the stream"),
        (b"a: \"x\x01\"\n", 1, 6, "the character U+0001 is not allowed"),
        (b"a: b\nc: \xff\n", 2, 4, "not UTF-8 text: byte 0xff cannot be decoded"),
        (b"a: *nowhere\n", 1, 4, "found undefined alias"),
    ],
)
def test_unreadable_yaml_is_one_error_at_its_place(
    text: bytes, line: int, col: int, message: str
) -> None:
    with pytest.raises(YamlError) as caught:
        load_document(text)
    issue = caught.value.issue
    assert (issue.line, issue.col) == (line, col)
    assert message in issue.message


def test_a_byte_order_mark_is_fine() -> None:
    assert load_document("\ufeffa: 1\n".encode()).data == {"a": 1}


def test_yaml_booleans_and_dates_read_as_yaml_says(problems_of: Problems) -> None:
    text = MINIMAL + "description: 2024-05-01\nrollout:\n  prestage: off\nansible:\n  become: yes\n"
    assert problems_of(text) == []
    doc = load_document(text.encode())
    assert doc.data["description"] == "2024-05-01"  # text, not a date object
    assert doc.data["rollout"]["prestage"] is False


def test_an_alias_bomb_stops_early() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(YamlError) as caught:
        load_document("\n".join(lines).encode())
    assert f"more than {MAX_NODES} nodes" in caught.value.issue.message


def test_a_self_referencing_alias_is_an_error() -> None:
    with pytest.raises(YamlError) as caught:
        load_document(b"a: &x\n  b: *x\n")
    assert caught.value.issue.message == "an alias refers to itself"
    assert caught.value.issue.path == ("a", "b")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(YamlError) as caught:
        load_document(b"a: " + b"[" * 100 + b"]" * 100 + b"\n")
    assert caught.value.issue.message == "nested too deeply"
    with pytest.raises(YamlError) as caught:
        load_document(b"[" * 1500 + b"]" * 1500)
    assert "nested too deeply" in caught.value.issue.message


def test_complex_keys_and_unknown_tags_are_reported_not_fatal() -> None:
    doc = load_document(b"? [a, b]\n: 1\nc: !secret x\nd: 2\n")
    assert doc.data == {"c": "x", "d": 2}
    assert [(issue.line, issue.message) for issue in doc.issues] == [
        (1, "a key must be a plain word, not a list or mapping"),
        (3, "invalid YAML value: could not determine a constructor for the tag '!secret'; "
            'if it is text, put it in quotes: "!secret x"'),
    ]


def test_lines_are_counted_as_editors_count_them() -> None:
    # PyYAML also breaks lines at U+2028 and U+0085; an editor shows them inside a line.
    doc = load_document("a: \"x\u2028y\u0085\"\nb: 1\r\nc: 2\rd: 3\n".encode())
    assert doc.positions.keys[("b",)] == (2, 1)
    assert doc.positions.keys[("c",)] == (3, 1)
    assert doc.positions.keys[("d",)] == (4, 1)


@pytest.mark.skipif(loader._FAST_LOADER is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.stem)
def test_libyaml_and_pyyaml_read_examples_alike(path: Path) -> None:
    text = path.read_text("utf-8")
    results = []
    for parser in (loader._FAST_LOADER, yaml.SafeLoader):
        try:
            doc = loader._load(parser, text, loader.Lines(text))
            results.append((doc.data, doc.positions, doc.issues))
        except (yaml.YAMLError, loader.YamlError) as exc:
            results.append(type(exc).__name__)
    assert results[0] == results[1]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!int app", "invalid YAML value: 'app' is not a valid !!int: remove the tag"),
        ("!!float abc", "invalid YAML value: 'abc' is not a valid !!float: remove the tag"),
        ("!!bool maybe", "invalid YAML value: 'maybe' is not a valid !!bool: remove the tag"),
        ("!!timestamp x", "invalid YAML value: 'x' is not a valid !!timestamp: remove the tag"),
    ],
)
def test_a_tag_its_value_does_not_fit_is_a_problem_not_a_crash(
    problems_of: Problems, value: str, message: str
) -> None:
    text = MINIMAL.replace("name: billing-py313", f"name: {value}")
    found = [(p.line, p.col, p.path, p.message) for p in problems_of(text)]
    assert (3, 7, "name", message) in found


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text(MINIMAL + "# padding\n" * 200_000)
    assert validate_file(huge) == [
        f"{huge}:1:1: (root): the spec is larger than 1 MiB: a spec is a few kilobytes; "
        "is this the right file?"
    ]


@pytest.mark.parametrize(
    ("targets", "path", "message"),
    [
        ("!web", "targets", "invalid YAML value: could not determine a constructor for the tag "
                            "'!web'; if it is text, put it in quotes: \"!web\""),
        ("&web", "targets", "the value is only a YAML anchor, so it is empty; if it is text, put it "
                            "in quotes: \"&web\""),
        ("*web", "(root)", "invalid YAML: found undefined alias 'web'; if it is text, put it in "
                           "quotes: \"*web\""),
    ],
)
def test_a_host_pattern_yaml_reads_as_syntax_says_to_quote_it_once(
    problems_of: Problems, targets: str, path: str, message: str
) -> None:
    found = problems_of(MINIMAL.replace("targets: billing", f"targets: {targets}"))
    assert [(p.line, p.col, p.path, p.message) for p in found] == [(4, 10, path, message)]
