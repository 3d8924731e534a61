"""Load and validate a spec: YAML with positions, then the schema, then the semantic rules."""

from __future__ import annotations

import hashlib
from pathlib import Path

from oxzep7_deploy.errors import SpecError
from oxzep7_deploy.spec.build import build_spec
from oxzep7_deploy.spec.defaults import with_defaults
from oxzep7_deploy.spec.loader import Document, YamlError, load_document
from oxzep7_deploy.spec.messages import schema_issues
from oxzep7_deploy.spec.model import Spec
from oxzep7_deploy.spec.problems import Issue, Positions, Problem, describe, to_problems
from oxzep7_deploy.spec.semantics import semantic_issues

MAX_SPEC_BYTES = 1024 * 1024  # a spec is a few kilobytes; this is surely the wrong file


def check_bytes(data: bytes, source: str) -> tuple[list[Problem], Document | None]:
    """Every problem of the spec in `data`, sorted by line, and the document if it is YAML.

    `source` names the spec in each problem (`SOURCE:LINE:COL: PATH: message`).
    """
    try:
        document = load_document(data)
    except YamlError as exc:
        return to_problems([exc.issue], Positions(), source), None
    issues = list(document.issues)
    if document.data is None:
        issues.append(Issue((), "the spec is empty"))
    elif not isinstance(document.data, dict):
        issues.append(Issue((), "the spec must be a mapping of keys (apiVersion, kind, name, …), "
                                f"not {describe(document.data)}"))
    else:
        found = schema_issues(document.data)
        reported = {issue.path for issue in found}
        semantic = [i for i in semantic_issues(document.data) if i.path not in reported]
        # a value YAML could not read (`!web`, `&web`) is reported once, by the loader
        unreadable = {(i.path, i.line, i.col) for i in document.issues}
        issues += [i for i in found + semantic
                   if (i.path, *document.positions.locate(i.path, i.at_key)) not in unreadable]
    return to_problems(issues, document.positions, source), document


def parse_spec(data: bytes, source: str) -> Spec:
    """The `Spec` in `data`; `SpecError` with every problem if it is not a valid spec."""
    problems, document = check_bytes(data, source)
    if problems or document is None:
        raise _invalid(source, problems)
    digest = hashlib.sha256(data).hexdigest()
    return build_spec(with_defaults(document.data), digest)


def load_spec(path: str | Path) -> Spec:
    """Read, validate and build the spec at `path`; `SpecError` lists every problem at once."""
    data = _read(path)
    if isinstance(data, Problem):
        raise SpecError(f"{path}: {data.message}", hint="check the path of the spec file")
    return parse_spec(data, str(path))


def validate_document(path: str | Path) -> list[Problem]:
    """Every problem of the spec at `path`, sorted by line; empty if it is valid.

    Static: the spec alone, with no file checks, no inventory and no network.
    """
    data = _read(path)
    if isinstance(data, Problem):
        return [data]
    return check_bytes(data, str(path))[0]


def validate_file(path: str | Path) -> list[str]:
    """`validate_document` as the lines `validate` prints: `SPEC:LINE:COL: PATH: message`."""
    return [str(problem) for problem in validate_document(path)]


def _read(path: str | Path) -> bytes | Problem:
    """The spec's bytes, or the problem that stops it being read (missing, a directory, huge)."""
    try:
        with open(path, "rb") as spec_file:
            data = spec_file.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return Problem(1, 1, "(root)", f"cannot read the spec: {reason}", str(path))
    if len(data) > MAX_SPEC_BYTES:
        message = (f"the spec is larger than {MAX_SPEC_BYTES // 1024 // 1024} MiB: "
                   "a spec is a few kilobytes; is this the right file?")
        return Problem(1, 1, "(root)", message, str(path))
    return data


def _invalid(source: str, problems: list[Problem], message: str | None = None) -> SpecError:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return SpecError(
        message or f"{source} is not a valid spec: {count}",
        tuple(str(problem) for problem in problems),
        hint="fix each line listed; `oxzep7-deploy schema` prints every field and its default",
    )
