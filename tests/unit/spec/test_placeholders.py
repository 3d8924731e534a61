"""Placeholders: which braces are ours, and substitution that the shell reads back exactly."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxzep7_deploy.spec.placeholders import (
    PLACEHOLDERS,
    PlaceholderError,
    find_placeholders,
    substitute,
)

VALUES = {
    "python": "/opt/oxzep7/python/3.13.5/bin/python3.13",
    "venv": "/srv/app/releases/r1/venv",
    "release": "/srv/app/releases/r1",
    "root": "/srv/app",
    "code": "/srv/my app",
    "version": "3.13.5",
}


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("{python} -m compileall -q {code}", ["python", "code"]),
        ("echo ${HOME} $HOME", []),
        ("awk '{print $1}'", []),
        ("{{python}} {{ }}", []),
        ("{{{python}}}", ["python"]),
        ("{ python } {} {a-b} {a.b}", []),
        ("{pyhton} {Python} {x_1}", ["pyhton", "Python", "x_1"]),
        ("${venv}/bin:{venv}/bin", ["venv"]),
        ("{python}{python}", ["python", "python"]),
    ],
)
def test_find_placeholders(template: str, names: list[str]) -> None:
    assert find_placeholders(template) == names


@pytest.mark.parametrize(
    ("template", "result"),
    [
        ("{python} -V", "/opt/oxzep7/python/3.13.5/bin/python3.13 -V"),
        ("cd {code} && ls", "cd '/srv/my app' && ls"),
        ("echo ${HOME} {version}", "echo ${HOME} 3.13.5"),
        ("awk '{print $1}' {root}/x", "awk '{print $1}' /srv/app/x"),
        ("echo '{{\"v\": 1}}'", "echo '{\"v\": 1}'"),
        ("find . -exec rm {{}} +", "find . -exec rm {} +"),
        ("{{python}}", "{python}"),
        ("{{{version}}}", "{3.13.5}"),
        ("} { }} {{", "} { } {"),
    ],
)
def test_substitute(template: str, result: str) -> None:
    assert substitute(template, VALUES) == result


def test_substitute_without_quoting_is_for_urls_and_paths() -> None:
    assert substitute("http://h/{version}/{code}", VALUES, quote=False) == "http://h/3.13.5//srv/my app"


def test_a_placeholder_without_a_value_is_an_error() -> None:
    with pytest.raises(PlaceholderError) as caught:
        substitute("{python} {code}", {"python": "/p"})
    assert caught.value.name == "code"
    assert str(caught.value) == "no value for placeholder {code}"


def test_the_allowed_placeholders_are_the_spec_s() -> None:
    assert list(PLACEHOLDERS) == ["python", "venv", "release", "root", "code", "version", "port"]


any_value = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@settings(max_examples=150, deadline=None)
@given(values=st.fixed_dictionaries({name: any_value for name in PLACEHOLDERS}))
def test_substituted_values_come_back_whole_from_the_shell(values: dict[str, str]) -> None:
    template = "run {python} --in {venv} {release} {root} {code} {version}"
    words = shlex.split(substitute(template, values))
    assert words == ["run", values["python"], "--in", values["venv"], values["release"],
                     values["root"], values["code"], values["version"]]


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_doubled_braces_always_give_back_the_text(text: str) -> None:
    escaped = text.replace("{", "{{").replace("}", "}}")
    assert find_placeholders(escaped) == []
    assert substitute(escaped, {}) == text
