"""What the lab says when a server it needs is not installed."""

import pytest

from obslab import servers


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
