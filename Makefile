# The commands a newcomer needs. `make test` installs everything it uses itself.
.PHONY: setup test lint format up down bench validate

export UV_PYTHON_DOWNLOADS := never
# Compile the dependencies once: this machine sets PYTHONDONTWRITEBYTECODE, and every
# service process would otherwise compile FastAPI and OpenTelemetry from source at start.
export UV_COMPILE_BYTECODE := 1
UV := python3 -m uv

setup:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@scripts/ensure-system-packages lab
	@$(UV) sync --all-packages --frozen --quiet

test: setup
	$(UV) run pytest

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: setup
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

# Every file of the compose stack and the native lab's monitoring, checked without Docker:
# Compose itself, promtool, amtool, nginx -t, and tests/observability/checks.py.
validate: setup
	$(UV) run pytest tests/observability -q

up: setup
	$(UV) run obslab up

down: setup
	$(UV) run obslab down

# What telemetry costs: the checkout chain under k6 load, telemetry off and on, side
# by side (about five minutes). Writes bench/results/latest.{json,md}.
bench: setup
	$(UV) run python -m bench
