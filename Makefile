# DRPlan: two commands do all set-up.
#   make run    install, migrate, load demo data if empty, train the ML models if missing, start the web UI
#               (http://127.0.0.1:3045/, open this one in a browser), the API (http://127.0.0.1:4045/api/v1/dr/,
#               for scripts; browsers refuse port 4045), the workers and the ML service (http://127.0.0.1:8045/)
#   make test   install test tools, lint, run the suite on SQLite (with the schemathesis API contract
#               run) and on a real PostgreSQL 16, and the Redis-backed tests against a real Redis
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
UI_PORT ?= 3045
PORT   ?= 4045
ML_PORT ?= 8045

.PHONY: run test install install-dev lint migrate bench-api bench-engine bench-lab bench-console bench-fuzz bench-pages bench-ml bench-compliance bench-import bench-monitoring bench-takeover cluster cluster-down lab lab-down clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_roles

run: migrate
	bash scripts/ensure_pango.sh
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py ml train --if-missing
	DRPLAN_ML_URL=$${DRPLAN_ML_URL:-http://$(HOST):$(ML_PORT)} $(PY) scripts/ml_serve.py --host $(HOST) --port $(ML_PORT) -- \
		$(PY) scripts/serve.py --host $(HOST) --ui-port $(UI_PORT) --port $(PORT)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) manage.py check
	DRPLAN_ENV=production DRPLAN_SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
		$(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

test: lint
	bash scripts/ensure_pango.sh
	bash scripts/ensure_chromium.sh
	bash scripts/ensure_sshd.sh
	bash scripts/ensure_haproxy.sh
	bash scripts/ensure_mariadb.sh
	# SQLite: the in-process tests in two processes (pytest-xdist: the 2 cores), then the tests that start
	# real servers (PostgreSQL pairs, Redis, sshd, moto, the lab) and the browser tests, one at a time.
	# Each lists its slowest tests: the whole run should stay near 20 minutes on 2 cores.
	$(PY) -m pytest -n 2 -m "not realsystem and not lab and not pgpair and not cluster" --ignore=e2e --durations=10
	$(PY) -m pytest -m "realsystem or lab or pgpair or cluster" --ignore=e2e --durations=15
	$(PY) -m pytest e2e
	# PostgreSQL 16 (pgserver): everything but the contract and the real-system tests, which ran above.
	$(PY) scripts/with_postgres.py $(PY) -m pytest -n 2 -m "not contract and not realsystem and not cluster"
	$(PY) scripts/with_redis.py $(PY) -m pytest -m redis

# The DR lab: real PostgreSQL and Redis pairs and an orders app on 127.0.0.1 (var/lab/).
lab: install-dev migrate
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py lab up
	$(PY) manage.py lab status

lab-down: install-dev
	$(PY) manage.py lab down

bench-api: install-dev
	$(PY) bench/api.py

bench-engine: install-dev
	$(PY) bench/engine.py

bench-lab: install-dev
	$(PY) bench/lab_failover.py

bench-console: install-dev
	$(PY) bench/console_latency.py

bench-fuzz: install-dev
	$(PY) bench/api_fuzz.py

bench-compliance: install-dev
	bash scripts/ensure_pango.sh
	$(PY) bench/compliance.py

bench-monitoring: install-dev
	$(PY) bench/monitoring.py

bench-pages: install-dev
	$(PY) bench/pages.py

bench-ml: install-dev
	$(PY) bench/ml.py

bench-import: install-dev
	$(PY) bench/import.py

clean:
	rm -rf $(VENV) var

bench-takeover: install-dev
	$(PY) bench/takeover.py

# A cluster on one machine (scripts/cluster.py): PostgreSQL, Redis, two web nodes behind HAProxy on
# http://127.0.0.1:5045/, two worker clusters, the ML service. README, "A cluster".
cluster: install-dev
	bash scripts/ensure_haproxy.sh
	$(PY) scripts/cluster.py up
	$(PY) scripts/cluster.py status

cluster-down: install-dev
	$(PY) scripts/cluster.py down
