# The commands a newcomer needs. `make test` installs everything it uses itself.
.PHONY: setup test lint format generate up down bench validate load chaos-proof

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
	@# A lab's check.py is a module of its own (labs/NN-name/ is no package): one run each.
	@for check in labs/*/check.py; do $(UV) run mypy --strict --no-error-summary $$check || exit 1; done
	@$(MAKE) --no-print-directory generate ARGS=--check

# Every generated file from its source: the rules and dashboards from slo.yaml and
# alerts.yaml, docs/alerts.md from the rules and the experiments. `make generate
# ARGS=--check` (run by `make lint`) fails when a committed file is stale.
generate: setup
	$(UV) run python observability/prometheus/generate.py $(ARGS)
	$(UV) run python observability/grafana/generate.py $(ARGS)
	$(UV) run python -m obslab.chaos.proofs $(ARGS)

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
