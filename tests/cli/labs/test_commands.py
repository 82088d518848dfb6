"""`obslab lab` without a running lab: refusals before anything starts, each lab's
progress in the runtime folder, and every lab documented where `lab list` says."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from obslab.cli import app
from obslab.labkit.base import Progress, Record
from obslab.labkit.registry import exercises
from obslab.native.lab import LabSettings
from tests.cli.labs.readme import LABS, blocks, checks_with
from tests.support.backends import free_port


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty runtime folder: no lab running, no progress."""
    monkeypatch.setenv("OBSLAB_LAB_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def obslab(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["lab", *args])
    return result.exit_code, result.output


def test_list_shows_each_labs_state_from_the_runtime_folder(runtime: Path) -> None:
    """`lab list` shows every lab not started, then started or passed as recorded."""
    code, shown = obslab("list")
    assert code == 0 and shown.count("not started") == len(exercises())
    progress = Progress(LabSettings())
    progress.put(1, Record(status="passed", started_at=1.0))
    progress.put(2, Record(status="started", started_at=1.0))
    _, shown = obslab("list")
    assert "passed" in shown and shown.count("not started") == len(exercises()) - 2


def test_refusals_exit_2_and_change_nothing(runtime: Path) -> None:
    """An unknown lab, a check or answer of a lab not started, and a reset of a lab never
    started are refused or harmless, and leave no progress behind."""
    assert obslab("start", "99")[0] == 2
    assert obslab("check", "1")[0] == 2
    code, said = obslab("answer", "2", "payments", "code")
    assert code == 2 and "not started" in said
    assert obslab("reset", "1")[0] == 0
    assert Progress(LabSettings()).get(2).status == "not started"


def test_a_lab_that_cannot_reach_the_shop_refuses_to_start(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting a lab whose start needs the shop, with no lab up, exits 2 and records
    nothing (a port nobody listens on stands for the lab that is down)."""
    monkeypatch.setenv("OBSLAB_LAB_EDGE_PORT", str(free_port()))
    monkeypatch.setenv("OBSLAB_LAB_PROMETHEUS_PORT", str(free_port()))
    code, said = obslab("start", "4")
    assert code == 2 and "does not answer" in said
    # Lab 5 needs no shop but the lab's Prometheus and store: it leaves no service behind.
    code, said = obslab("start", "5")
    assert code == 2 and "Prometheus" in said
    assert not list(runtime.glob("labs/05/*.pid"))
    assert Progress(LabSettings()).get(4).status == "not started"


def test_every_lab_has_a_readme_listed_in_the_workshop_map() -> None:
    """Each lab `lab list` shows has its folder's README, with steps to run and the
    check, and the workshop map links to it."""
    workshop = (LABS / "README.md").read_text()
    for number, exercise in exercises().items():
        readme = LABS / exercise.folder / "README.md"
        assert any(b.language == "sh" for b in blocks(readme)), readme
        assert checks_with(readme, number), readme
        assert f"({exercise.folder}/README.md)" in workshop
