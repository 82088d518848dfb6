"""``make bench``: what telemetry costs, measured side by side.

The checkout chain runs as real processes, alternately with telemetry off
(``OBSLAB_TELEMETRY=false``), fully on (every trace sampled, traces and logs sent
over OTLP to a receiver that discards them), and fully on into the native lab's own
receiver, which stores everything (issue 9), under the same k6 load. Each run starts
fresh services on fresh databases; the figures land in ``bench/results/latest.json``
and ``latest.md``. It is a benchmark, not a test: nothing here asserts a timing.
"""
