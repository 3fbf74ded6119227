# auditlens — the two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOWEST := .venv-lowest
export TZ := UTC
export JUPYTER_PLATFORM_DIRS := 1

.PHONY: demo test test-lowest bench lint typecheck install system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[postgres,dev,spark]'
	touch $(STAMP)

install: $(STAMP)

## Build a demo SQLite store in out/, show what is in it, find the incidents, write a report.
demo: install system-deps
	mkdir -p out
	rm -f out/demo.db out/demo.db-wal out/demo.db-shm
	$(BIN)/auditlens demo --db out/demo.db --orgs 3 --days 62 --incidents out/incidents.json
	$(BIN)/auditlens stats --db out/demo.db --days 7
	@echo; echo '$$ auditlens import FORMAT data/samples/FORMAT   # real trails: CloudTrail, Okta, GitHub, Workspace, sshd'
	$(BIN)/auditlens import cloudtrail data/samples/cloudtrail --db out/demo.db
	$(BIN)/auditlens import okta data/samples/okta --okta-org acme.okta.com --db out/demo.db
	$(BIN)/auditlens import github data/samples/github --db out/demo.db
	$(BIN)/auditlens import workspace data/samples/workspace --db out/demo.db
	$(BIN)/auditlens org set 7e57e0d0-55d0-4c1a-9b1e-5e4e0e0055d0 --name "Acme servers" --timezone Europe/Berlin --db out/demo.db > /dev/null
	$(BIN)/auditlens import sshd data/samples/sshd --org "Acme servers" --year 2024 --timezone Europe/Berlin --db out/demo.db
	$(BIN)/auditlens search --db out/demo.db "actor:sshd:web-1:root" --limit 3
	@echo; echo '$$ auditlens search "failed" --limit 8'
	$(BIN)/auditlens search --db out/demo.db "failed" --limit 8
	@echo; echo '$$ auditlens search "action:webhook.* -result:success" --limit 5'
	$(BIN)/auditlens search --db out/demo.db "action:webhook.* -result:success" --limit 5
	@echo; echo '$$ auditlens org list   # time zones, hours and people: stored as audit entries'
	$(BIN)/auditlens org list --db out/demo.db
	@echo; echo '$$ auditlens detect   # the injected incidents, in each person and organization time zone'
	$(BIN)/auditlens detect --db out/demo.db
	@echo; echo '$$ auditlens detect --sigma rules/   # the Sigma rule pack, compiled to the same SQL filters and windows'
	$(BIN)/auditlens detect --db out/demo.db --sigma rules/
	@echo; echo '$$ auditlens checkpoint && auditlens verify   # sign the chain heads, then check everything'
	rm -rf out/keys && $(BIN)/auditlens keys generate --out out/keys --name demo.local/log > /dev/null
	AUDITLENS_SIGNING_KEY=out/keys/signing.key $(BIN)/auditlens checkpoint --db out/demo.db
	$(BIN)/auditlens verify --db out/demo.db --key out/keys/signing.vkey
	@echo; echo '$$ auditlens lake sync --to out/lake && auditlens verify --lake out/lake   # the trail as Hive-partitioned Parquet, verifiable on its own'
	rm -rf out/lake
	$(BIN)/auditlens lake sync --db out/demo.db --to out/lake
	$(BIN)/auditlens verify --lake out/lake --key out/keys/signing.vkey
	@echo; echo '$$ auditlens report soc2 --period last-month --out out/soc2-report.pdf   # the notebook, run by papermill'
	$(BIN)/auditlens report soc2 --db out/demo.db --period last-month --out out/soc2-report.pdf --html out/soc2-report.html
	@echo; echo "Try: $(BIN)/auditlens search --db out/demo.db 'category:user_management last:30d'"

## Install what the tests need (Python and Debian packages), then run the whole suite.
test: install system-deps lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup
	$(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider \
	  --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks

## The fast tests (detectors, store, query, chain) against the lowest versions pyproject.toml
## allows: a second venv resolved with `uv pip install --resolution lowest-direct` (no `spark`
## extra: none of these tests needs pyspark or a JVM).
test-lowest: $(LOWEST)/.installed system-deps
	$(LOWEST)/bin/python -m pytest -n 2 --dist loadgroup tests/detect tests/store tests/query tests/chain

$(LOWEST)/.installed: pyproject.toml | $(BIN)/python
	rm -rf $(LOWEST)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(LOWEST)
	$(BIN)/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct \
	  -e '.[postgres,dev]'
	touch $@

system-deps:
	@bash scripts/system-deps.sh

lint: install
	$(BIN)/ruff check src tests benchmarks tools notebooks
	$(BIN)/ruff format --check src tests benchmarks tools notebooks

typecheck: install
	$(BIN)/mypy

## Speed targets: prints a table with ratios against baselines measured in the same run.
bench: install
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_chain.py
	$(BIN)/python benchmarks/bench_detect.py
	$(BIN)/python benchmarks/bench_export.py
	$(BIN)/python benchmarks/bench_ocsf.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_cli.py

clean:
	rm -rf $(VENV) $(LOWEST) out .pytest_cache .mypy_cache .ruff_cache
