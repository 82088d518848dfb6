"""``python -m orders [serve|migrate]``."""

from obskit import run
from orders.main import migrate
from orders.settings import Settings

settings = Settings()
run("orders.main:create_app", settings, lambda: migrate(settings))
