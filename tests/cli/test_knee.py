"""Reading where a breakpoint run broke from k6's CSV samples and the CPU samples."""

from __future__ import annotations

import csv
from pathlib import Path

from obslab.load import knee

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
    assert knee.crossing(rows[:5], "p99_ms", 500) is None  # over only in the last window


def test_a_run_k6_stopped_crosses_in_its_last_window() -> None:
    """When k6 aborted the run on its threshold, a last window over the limit is the
    crossing; one over the limit earlier, alone, is still noise."""
    p99s = [100, 700, 200, 300, 600]
    rows = [{"t": 10 * i, "p99_ms": p99} for i, p99 in enumerate(p99s)]
    assert knee.crossing(rows, "p99_ms", 500, stopped=True) == {"t": 40, "p99_ms": 600}
    assert knee.crossing(rows[:4], "p99_ms", 500, stopped=True) is None
    assert knee.crossing([], "p99_ms", 500, stopped=True) is None


def test_a_stopped_runs_last_window_cut_short_does_not_undo_the_crossing() -> None:
    """k6 stopped the run 3 s into its last window, whose p99 counts only the requests
    that finished before the abort: the window over the limit before it is the crossing.
    A whole last window under the limit, or a run k6 did not stop, still undoes it."""
    rows = [
        {"t": 0, "seconds": 10, "p99_ms": 255},
        {"t": 10, "seconds": 10, "p99_ms": 428},
        {"t": 20, "seconds": 10, "p99_ms": 608},
        {"t": 30, "seconds": 3, "p99_ms": 312},
    ]
    assert knee.crossing(rows, "p99_ms", 500, stopped=True) == rows[2]
    assert knee.crossing(rows, "p99_ms", 500) is None
    whole = [*rows[:3], {"t": 30, "seconds": 10, "p99_ms": 312}]
    assert knee.crossing(whole, "p99_ms", 500, stopped=True) is None


def test_the_last_window_rate_counts_the_seconds_it_lasted(tmp_path: Path) -> None:
    """A run stopped 4 s into its second window: that window's rate is over 4 s, not 10."""
    start = 1_800_000_000
    rows = [("iterations", start + i, 1, "") for i in range(10)]
    rows += [("iterations", start + 10 + i // 2, 1, "") for i in range(8)]  # 2/s for 4 s
    found = knee.windows(write_samples(tmp_path / "samples.csv", rows), "place_order")
    assert [(w["t"], w["rate"]) for w in found] == [(0, 1.0), (10, 2.0)]


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
