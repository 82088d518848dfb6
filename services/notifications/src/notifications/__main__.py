"""``python -m notifications [serve|migrate]``."""

from notifications.main import migrate
from notifications.settings import Settings
from obskit import run

settings = Settings()
run("notifications.main:create_app", settings, lambda: migrate(settings))
