"""Fuzz: whatever bytes a spec file holds, loading gives a Spec or readable problems, nothing else."""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxzep7_deploy.errors import SpecError
from oxzep7_deploy.spec import parse_spec
from oxzep7_deploy.spec.model import HostCount, Spec, Strategy
from tests.unit.spec.examples import PROBLEM, VALID

SOURCE = "fuzz.yaml"
EXAMPLE_BYTES = [path.read_bytes() for path in VALID]
EXAMPLE_DATA = [yaml.safe_load(data) for data in EXAMPLE_BYTES]
JARGON = ("is not valid under", "is not of type", "does not match", "is a required property",
          "Additional properties", "should not be valid", "was expected", "Traceback", "Error(")



def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_outcome(data: bytes) -> Spec | SpecError:
    """Load `data`; assert it gives a Spec or a SpecError whose problems read as they should."""
    try:
        spec = parse_spec(data, SOURCE)
    except SpecError as exc:
        assert exc.problems, "a SpecError without problems"
        lines = len(re.split(r"\r\n|\r|\n", data.decode("utf-8", "replace")))
        for problem in exc.problems:
            match = PROBLEM.match(problem)
            assert match and problem.isprintable(), f"not SPEC:LINE:COL: PATH: message: {problem!r}"
            assert match["source"] == SOURCE
            assert 1 <= int(match["line"]) <= lines and int(match["col"]) >= 1, problem
            assert not any(jargon in match["message"] for jargon in JARGON), problem
        return exc
    assert isinstance(spec, Spec)
    if spec.rollout.strategy is not Strategy.ROLLING:
        assert spec.rollout.stages[-1].hosts == HostCount(100, percent=True)
    return spec


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from([
        "100%", "0%", "150%", "25%", "5m", "1h30m", "0", "-1s", "{python}", "{code} {bogus}",
        "${HOME}", "{{x}}", "/", "/usr", "/usr/local", "/opt/../usr", "relative/path", "3.13",
        "3.13.5", "source", "package", "prebuilt", "existing", "rolling", "blue-green", "canary",
        "manual", "http://127.0.0.1/", "a" * 64, "on-each-host",
    ]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*path, i))
    return found


def _mutate(document: Any, data: st.DataObject) -> Any:
    """Delete a key, change a value, or add a junk key, somewhere in the document."""
    path = data.draw(st.sampled_from(_paths(document)))
    op = data.draw(st.sampled_from(["delete", "replace", "insert"]))
    if not path:
        return data.draw(values) if op == "replace" else document
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if op == "delete":
        del parent[path[-1]]
    elif op == "replace":
        parent[path[-1]] = data.draw(values)
    elif isinstance(parent[path[-1]], dict):
        parent[path[-1]][data.draw(st.text(max_size=10))] = data.draw(values)
    else:
        parent[path[-1]] = {data.draw(st.text(max_size=10)): parent[path[-1]]}
    return document


@fuzz(900)
@given(data=st.data())
def test_mutated_examples(data: st.DataObject) -> None:
    document = copy.deepcopy(data.draw(st.sampled_from(EXAMPLE_DATA)))
    for _ in range(data.draw(st.integers(1, 4))):
        document = _mutate(document, data)
    check_outcome(yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode())


@fuzz(500)
@given(data=st.data())
def test_examples_with_bytes_changed(data: st.DataObject) -> None:
    text = bytearray(data.draw(st.sampled_from(EXAMPLE_BYTES)))
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "duplicate-line"]))
        if op == "insert":
            text[at:at] = data.draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
                [b":", b"- ", b"{", b"}", b"[", b"\t", b"  ", b"\n", b"&a ", b"*a", b"!!int ", b"'"]))
        elif op == "delete":
            del text[at:at + data.draw(st.integers(1, 20))]
        elif op == "replace" and at < len(text):
            text[at] = data.draw(st.integers(0, 255))
        else:
            start = text.rfind(b"\n", 0, at) + 1
            end = text.find(b"\n", at)
            text[start:start] = text[start:end + 1 if end >= 0 else len(text)]
    check_outcome(bytes(text))


@fuzz(350)
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check_outcome(text.encode("utf-8", "surrogatepass"))


@fuzz(250)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    check_outcome(data)


def test_the_fuzzer_reaches_both_outcomes() -> None:
    assert isinstance(check_outcome(EXAMPLE_BYTES[0]), Spec)
    assert isinstance(check_outcome(b"a: [\n"), SpecError)
