# The commands a newcomer needs. `make test` installs everything it uses itself.
.PHONY: setup test lint format up down bench validate load chaos-proof

export UV_PYTHON_DOWNLOADS := never
# Compile the dependencies once: this machine sets PYTHONDONTWRITEBYTECODE, and every
# service process would otherwise compile FastAPI and OpenTelemetry from source at start.
export UV_COMPILE_BYTECODE := 1
UV := python3 -m uv

setup:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@scripts/ensure-system-packages lab
	@$(UV) sync --all-packages --frozen --quiet
	@# Grafana's LogQL grammar (npm) for the dashboards' Loki queries, from its lockfile.
	@test -d tests/observability/logql/node_modules || npm ci --prefix tests/observability/logql --no-audit --no-fund --loglevel=error

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
# Compose itself, promtool, amtool, nginx -t, and tests/observability/checks.py; and, as
# no file check can tell that a query returns data or an alert fires, a native lab under
# traffic (test_dashboards_data.py, test_lab_alerts.py start one).
validate: setup
	$(UV) run pytest tests/observability -q

up: setup
	$(UV) run obslab up

down: setup
	$(UV) run obslab down

# What telemetry costs: the checkout chain under k6 load, telemetry off, on, and on with
# the lab's receiver storing, side by side (about eight minutes), then the slow-payments
# run and the Lambda cold starts (bench/coldstart.py). Writes bench/results/latest.{json,md}.
bench: setup
	$(UV) run python -m bench

# A k6 scenario against the lab, its thresholds the SLOs (observability/slo.yaml):
#   make load SCENARIO=smoke   (average, stress, spike, soak, breakpoint; see load/README.md)
#   make load SCENARIO=stress ARGS="--rate 6 --prometheus"
load: setup
	$(UV) run obslab load $(SCENARIO) $(ARGS)

# Every chaos experiment against a native lab, each one's alerts shown to arrive at the
# webhook receiver and to resolve after rollback (about 20 minutes; `make test` runs two
# of them). The table of which experiment proves which alert: docs/alerts.md.
chaos-proof: setup
	$(UV) run pytest -m chaos_proof tests/e2e/test_chaos.py
