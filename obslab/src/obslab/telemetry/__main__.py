"""``python -m obslab.telemetry``: run the lab's OTLP receiver (``OBSLAB_TELEMETRY_*``)."""

import uvicorn

from obslab.telemetry.receiver import ReceiverSettings, create_app

settings = ReceiverSettings()
# No access log: every service exports every few seconds, and that line says nothing.
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=False)
