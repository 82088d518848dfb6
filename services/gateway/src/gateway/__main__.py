"""``python -m gateway``."""

from gateway.settings import Settings
from obskit import run

settings = Settings()
# No ``migrate`` command: the gateway has no database.
run("gateway.main:create_app", settings)
