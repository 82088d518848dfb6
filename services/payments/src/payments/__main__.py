"""``python -m payments [serve|migrate]``."""

from obskit import run
from payments.main import migrate
from payments.settings import Settings

settings = Settings()
run("payments.main:create_app", settings, lambda: migrate(settings))
