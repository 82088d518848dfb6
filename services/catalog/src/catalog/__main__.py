"""``python -m catalog [serve|migrate]``."""

from catalog.main import migrate
from catalog.settings import Settings
from obskit import run

settings = Settings()
run("catalog.main:create_app", settings, lambda: migrate(settings))
