"""artifacts.mirror: the spec field, what plan says, what hosts are told to download, `publish`,
and the message a host gives when the mirror's copy is refused. The e2e evidence that hosts
download and check it is tests/e2e/test_mirror.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.artifacts import ArtifactError
from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.publish import mirror_path, publish
from oxzep7_deploy.rules import sha256_file
from oxzep7_deploy.spec import validate_document
from oxzep7_deploy.spec.model import Artifacts, BuildMode, PrebuiltInstall, SourceInstall
from tests.unit.test_artifacts import (
    PLATFORMS,
    ScriptedRunner,
    cpython_tarball,
    make_tar,
    sha,
    spec_with,
)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "playbooks" / "plugins" / "filter"))
from oxzep7_mirror import oxzep7_mirror_refused  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "plans" / "canary-source.yaml"
MIRROR = "http://mirror.example:8080/oxzep7"


def write_spec(tmp_path: Path, mirror: object) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOLDEN.read_text() + f"artifacts:\n  mirror: {json.dumps(mirror)}\n")
    return spec


@pytest.mark.parametrize("url", [MIRROR + "/", "https://mirror.example", "http://[fd00::5]:80/a/"])
def test_a_mirror_url_is_valid(tmp_path: Path, url: str) -> None:
    assert validate_document(write_spec(tmp_path, url)) == []


@pytest.mark.parametrize("url", ["ftp://mirror.example/", "/srv/mirror", "http://a b/",
                                 "http://mirror/?x=1", "http://", 5])
def test_a_mirror_that_is_not_an_http_url_is_refused_with_its_line(tmp_path: Path, url: object
                                                                   ) -> None:
    problems = validate_document(write_spec(tmp_path, url))
    assert [p.path for p in problems] == ["artifacts.mirror"], problems
    assert "http" in problems[0].message


def test_plan_says_hosts_download_from_the_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    monkeypatch.setenv("OXZEP7_RECORDS", str(tmp_path / "records"))
    (tmp_path / "inv.ini").write_text("[billing]\nb1\nb2\nb3\n[prod:children]\nbilling\n")
    spec = write_spec(tmp_path, MIRROR + "/")
    text = CliRunner().invoke(cli, ["plan", str(spec), "-i", str(tmp_path / "inv.ini")])
    assert text.exit_code == 0, text.output
    assert (f"artifacts: each host downloads them from the mirror {MIRROR}/sha256/<sha256>"
            in text.stdout)
    doc = json.loads(CliRunner().invoke(
        cli, ["plan", str(spec), "-i", str(tmp_path / "inv.ini"), "--json"]).stdout)
    assert doc["artifacts"] == {"source": "mirror", "mirror": MIRROR}
    spec.write_text(GOLDEN.read_text())
    plain = CliRunner().invoke(cli, ["plan", str(spec), "-i", str(tmp_path / "inv.ini"), "--json"])
    assert "artifacts" not in json.loads(plain.stdout)  # without a mirror: the plan as before


def mirrored_source_run(tmp_path: Path, runner: ScriptedRunner, hosts: list[str],
                        mirror: str | None) -> SourceInstall:
    from dataclasses import replace

    from oxzep7_deploy.steps.interpreter import install_interpreter

    src = cpython_tarball(tmp_path / "Python-3.13.5.tar.xz")
    install = SourceInstall(url=str(src), sha256=sha(src), build=BuildMode.ONCE_PER_PLATFORM)
    spec = replace(spec_with(install), artifacts=Artifacts(mirror))
    install_interpreter(spec, "inv", hosts, runner, tmp_path / "run", tmp_path / "cache")
    return install


def test_with_a_mirror_each_host_is_told_the_url_of_its_artifact_by_sha256(tmp_path: Path
                                                                          ) -> None:
    runner = ScriptedRunner(PLATFORMS)
    mirrored_source_run(tmp_path, runner, ["h1", "h2", "h3", "h4"], MIRROR)
    ship = runner.requests[-1]
    assert ship.extravars["oxzep7_interp_action"] == "ship"
    sent = ship.extravars["oxzep7_interp_artifacts"]
    for host in ("h2", "h4"):
        assert sent[host]["url"] == f"{MIRROR}/sha256/{sent[host]['sha256']}"
    assert sent["h2"]["sha256"] == sha256_file(Path(sent["h2"]["path"]))


def test_without_a_mirror_the_controller_pushes_as_before(tmp_path: Path) -> None:
    runner = ScriptedRunner(PLATFORMS)
    mirrored_source_run(tmp_path, runner, ["h1", "h2"], None)
    assert "url" not in runner.requests[-1].extravars["oxzep7_interp_artifacts"]["h2"]


def test_publish_lays_out_every_built_tree_by_sha256_once(tmp_path: Path) -> None:
    from dataclasses import replace

    runner = ScriptedRunner(PLATFORMS)
    install = mirrored_source_run(tmp_path, runner, ["h1", "h2", "h3", "h4"], MIRROR)
    spec = replace(spec_with(install), artifacts=Artifacts(MIRROR))
    dest = tmp_path / "mirror"
    first = publish(spec, tmp_path / "cache", dest)
    assert len(first) == 2 and all(p.copied for p in first)  # one tree per platform
    for item in first:
        assert sha256_file(mirror_path(dest, item.candidate.sha256)) == item.candidate.sha256
    index = json.loads((dest / "index.json").read_text())
    assert {a["sha256"] for a in index["artifacts"]} == {p.candidate.sha256 for p in first}
    again = publish(spec, tmp_path / "cache", dest)
    assert [p.copied for p in again] == [False, False]  # idempotent
    damaged = mirror_path(dest, first[0].candidate.sha256)
    damaged.write_bytes(b"tampered")
    third = publish(spec, tmp_path / "cache", dest)
    assert sorted(p.copied for p in third) == [False, True]
    assert sha256_file(damaged) == first[0].candidate.sha256


def test_publish_of_a_prebuilt_archive_copies_the_archive(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "py.tar.gz", {"bin/python3.13": b"#!"})
    spec = spec_with(PrebuiltInstall(url=str(archive), sha256=sha(archive)))  # type: ignore[arg-type]
    done = publish(spec, tmp_path / "cache", tmp_path / "mirror")
    assert [p.candidate.sha256 for p in done] == [sha(archive)]
    assert mirror_path(tmp_path / "mirror", sha(archive)).read_bytes() == archive.read_bytes()


def test_publish_without_a_build_says_how_to_make_one_and_copies_nothing(tmp_path: Path) -> None:
    src = cpython_tarball(tmp_path / "Python-3.13.5.tar.xz")
    spec = spec_with(SourceInstall(url=str(src), sha256=sha(src)))
    with pytest.raises(ArtifactError) as caught:
        publish(spec, tmp_path / "cache", tmp_path / "mirror")
    assert "no interpreter tree of Python 3.13.5" in caught.value.message
    assert "rehearse" in (caught.value.hint or "")
    assert caught.value.exit_code == 1
    assert not (tmp_path / "mirror").exists()


def test_the_publish_command_prints_what_it_copied(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_tar(tmp_path / "py.tar.gz", {"bin/python3.13": b"#!"})
    spec = tmp_path / "spec.yaml"
    text = GOLDEN.read_text()
    start = text.index("  install:")
    end = text.index("application:")
    spec.write_text(text[:start] + "  install:\n    method: prebuilt\n"
                    f"    url: {archive}\n    sha256: \"{sha(archive)}\"\n" + text[end:]
                    + f"artifacts:\n  mirror: {MIRROR}/\n")
    monkeypatch.setenv("OXZEP7_CACHE", str(tmp_path / "cache"))
    out = CliRunner().invoke(cli, ["publish", str(spec), "--dest", str(tmp_path / "m")])
    assert out.exit_code == 0, out.output
    assert f"interpreter: sha256/{sha(archive)} copied" in out.stdout
    assert f"serve it at {MIRROR}" in out.stdout
    again = CliRunner().invoke(cli, ["publish", str(spec), "--dest", str(tmp_path / "m"),
                                     "--json"])
    assert json.loads(again.stdout)["artifacts"][0]["copied"] is False


def test_a_refused_download_names_host_url_and_both_checksums() -> None:
    expected, got = "a" * 64, "b" * 64
    failed = {"msg": f"The checksum for /tmp/ansible/tmpx did not match {expected}; it was {got}."}
    text = oxzep7_mirror_refused(failed, "the wheel set", MIRROR + "/sha256/" + expected,
                                 expected, "web3")
    assert text.startswith(f"web3 refused the wheel set from the mirror {MIRROR}/sha256/{expected}")
    assert f"its sha256 is {got}, the controller's manifest says {expected}" in text
    assert "oxzep7-deploy publish" in text and "nothing switched" in text


def test_an_unreachable_mirror_names_the_http_status() -> None:
    text = oxzep7_mirror_refused({"msg": "Request failed", "status_code": 404}, "the "
                                 "interpreter archive", MIRROR + "/sha256/x", "x", "web1")
    assert text.startswith("web1 could not download the interpreter archive (sha256 x)")
    assert "HTTP 404" in text


def test_wheel_sets_come_from_the_mirror_and_publish_lays_them_out(tmp_path: Path) -> None:
    from dataclasses import replace

    from oxzep7_deploy.spec.model import ExistingInstall
    from tests.fakes import FakeHosts
    from tests.unit.test_wheels import HOSTS, Builder, sets, shipped, wheels_spec

    spec = replace(wheels_spec(install=ExistingInstall("/usr/local/bin/python3.13")),
                   artifacts=Artifacts(MIRROR))
    fake = FakeHosts({"wheels.yml": Builder()})
    assert all(r.ok for r in sets(fake, spec, tmp_path).run(list(HOSTS)).values())
    got = shipped(fake)
    assert {got[h]["url"] for h in HOSTS} == {f"{MIRROR}/sha256/{got[h]['sha256']}" for h in HOSTS}
    done = publish(spec, tmp_path / "cache", tmp_path / "mirror")
    assert sorted(p.candidate.sha256 for p in done) == sorted({got[h]["sha256"] for h in HOSTS})
    assert {p.candidate.kind for p in done} == {"wheels"}
    plain = FakeHosts({"wheels.yml": Builder()})
    sets(plain, replace(spec, artifacts=Artifacts()), tmp_path / "plain").run(list(HOSTS))
    assert not any("url" in entry for entry in shipped(plain).values())
