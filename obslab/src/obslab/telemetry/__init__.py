"""Traces and logs for the native lab, without Jaeger or Loki.

``receiver`` takes the services' OTLP exports and ``store`` keeps them in one
bounded SQLite file, which ``obslab traces``, ``obslab trace`` and
``obslab logs --trace`` read. Run the receiver with ``python -m obslab.telemetry``.
"""
