"""``python -m inventory [serve|migrate]``."""

from inventory.main import migrate
from inventory.settings import Settings
from obskit import run

settings = Settings()
run("inventory.main:create_app", settings, lambda: migrate(settings))
