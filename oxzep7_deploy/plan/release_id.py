"""Release ids: chosen once per deploy, the same on every host and batch."""

from __future__ import annotations

from oxzep7_deploy.spec.model import Spec


def release_id(spec: Spec) -> str:
    """`3.13.5-1a2b3c4d5e`: the target version and the spec's digest.

    Deterministic, so `plan` shows the id `apply` will use and an interrupted `apply` of the
    same spec resumes the same release. A changed spec is a new release.
    """
    return f"{spec.interpreter.version}-{spec.digest[:10] or 'nodigest'}"
