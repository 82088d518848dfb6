"""Reading where a breakpoint run broke from k6's CSV samples and the CPU samples."""

from __future__ import annotations

import csv
from pathlib import Path

from obslab import knee

COLUMNS = ["metric_name", "timestamp", "metric_value", "extra_tags"]


def write_samples(path: Path, rows: list[tuple[str, int, float, str]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def test_windows_give_each_its_arrival_rate_and_the_steps_p99(tmp_path: Path) -> None:
    """Per 10 s: iterations per second, and the p99 of that step's requests only."""
    start = 1_800_000_000
    rows: list[tuple[str, int, float, str]] = []
    for i in range(20):  # 2/s in the first window, fast
        rows.append(("iterations", start + i // 2, 1, ""))
        rows.append(("http_req_duration", start + i // 2, 100 + i, "testid=x&step=place_order"))
    for i in range(40):  # 4/s in the second, one request slow
        rows.append(("iterations", start + 10 + i // 4, 1, ""))
        slow = 900 if i == 39 else 200
        rows.append(("http_req_duration", start + 10 + i // 4, slow, "step=place_order"))
    rows.append(("http_req_duration", start + 12, 5000, "step=browse"))  # another step
    found = knee.windows(write_samples(tmp_path / "samples.csv", rows), "place_order")
    assert [(w["t"], w["rate"], w["requests"], w["p95_ms"], w["p99_ms"]) for w in found] == [
        (0, 2.0, 20, 118, 119),
        (10, 4.0, 40, 200, 900),
    ]


def test_the_crossing_is_the_first_of_two_windows_over_the_limit() -> None:
    """One slow window is noise; the crossing is where two in a row are over the limit."""
    p99s = [100, 700, 200, 300, 600, 800, 900]
    rows = [{"t": 10 * i, "p99_ms": p99} for i, p99 in enumerate(p99s)]
    assert knee.crossing(rows, "p99_ms", 500) == {"t": 40, "p99_ms": 600}
    assert knee.crossing(rows[:4], "p99_ms", 500) is None


def test_busiest_is_the_component_with_the_highest_mean_cpu_in_the_window() -> None:
    """Over the CPU samples inside the window, the component with the highest mean wins,
    k6 (the load generator, not the shop) aside; the machine's mean is kept apart."""
    samples = [
        {"t": 5.0, "cpu_pct": {"orders": 90.0, "postgres": 10.0, "k6": 5.0}, "machine_pct": 150},
        {"t": 15.0, "cpu_pct": {"orders": 40.0, "postgres": 70.0, "k6": 99.0}, "machine_pct": 190},
        {"t": 20.0, "cpu_pct": {"orders": 50.0, "postgres": 60.0, "k6": 99.0}, "machine_pct": 170},
    ]
    assert knee.busiest(samples, 10, 20) == ("postgres", 65.0)
    assert knee.machine(samples, 10, 20) == 180
    assert knee.busiest(samples, 100, 110) == ("", 0.0)
    assert knee.machine(samples, 100, 110) is None
