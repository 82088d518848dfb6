"""What the lab says when a server it needs is not installed."""

import shutil
import subprocess
from pathlib import Path

import pytest

from obslab.native import servers


@pytest.mark.parametrize(
    ("binary", "debian", "brew"),
    [
        ("nginx", "nginx-light", "nginx"),
        ("prometheus-alertmanager", "prometheus-alertmanager", "alertmanager"),
    ],
)
def test_a_missing_binary_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, binary: str, debian: str, brew: str
) -> None:
    """The error names the Debian package and the Homebrew formula that bring the binary."""
    monkeypatch.setattr(servers.shutil, "which", lambda _: None)
    with pytest.raises(servers.MissingBinary) as error:
        servers.require(binary)
    assert f"apt-get install --no-install-recommends {debian}" in str(error.value)
    assert f"brew install {brew}" in str(error.value)


def test_a_binary_is_found_under_its_homebrew_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Homebrew's nginx-prometheus-exporter and alertmanager are the Debian binaries."""
    for name in ("nginx-prometheus-exporter", "alertmanager"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert servers.require("prometheus-nginx-exporter") == str(
        tmp_path / "nginx-prometheus-exporter"
    )
    assert servers.require("prometheus-alertmanager") == str(tmp_path / "alertmanager")


def test_the_install_script_names_what_is_missing(tmp_path: Path) -> None:
    """Where nothing is installed and apt-get cannot run, the script exits 1 naming each
    package once, by its Debian and its Homebrew name; the optional Redis exporter is
    no reason to fail."""
    for tool in ("bash", "ls", "id", "sort", "tr"):
        (tmp_path / tool).symlink_to(shutil.which(tool) or tool)
    script = Path(__file__).resolve().parents[2] / "scripts" / "ensure-system-packages"
    result = subprocess.run(
        ["bash", str(script), "lab"],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    message = result.stderr
    assert "apt-get install --no-install-recommends" in message
    for package in ("redis-server", "rabbitmq-server", "prometheus-alertmanager", "nginx-light"):
        assert package in message
    # Missing:, Debian: and macOS: name it once each, though promtool comes with it.
    assert message.count(" prometheus ") == 3, message
    assert "brew install" in message and "nginx-prometheus-exporter" in message
    assert "redis-exporter" not in message and "redis_exporter" not in message
