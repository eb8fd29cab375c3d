# mimofm: `make quickstart` runs the main job, `make test` runs the tests. Both bootstrap .venv first.
VENV ?= .venv
STAMP := $(VENV)/.bootstrapped
export DRJIT_LIBLLVM_PATH ?= $(firstword $(wildcard /usr/lib/*-linux-gnu/libLLVM-19.so /usr/lib/*-linux-gnu/libLLVM-19.so.1 /usr/lib/llvm-19/lib/libLLVM-19.so /usr/lib/llvm-19/lib/libLLVM.so.1))

.PHONY: quickstart test lint bench bootstrap clean bundled-sites catalog docs-cli docs-api

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

bootstrap: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/mimofm quickstart

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 -p no:cacheprovider tests

# ruff lint + format check (CI runs it before the tests)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_precoders.py

# the compact held-out evaluation set shipped in the package (about 1 min per site on 2 cores)
bundled-sites: $(STAMP)
	$(VENV)/bin/mimofm data raytrace --site etoile-open --site etoile-mixed --site florence-dense \
	    --positions 1000 --max-depth 5 --seed 0 --out-dir src/mimofm/assets/sites --overwrite

# every catalog site (train, val, held-out) into ~/.cache/mimofm/sites (MIMOFM_SITE_DIR); resumes if interrupted
catalog: $(STAMP)
	$(VENV)/bin/mimofm data raytrace --all --positions 2000 --seed 0

clean:
	rm -rf $(VENV) runs .pytest_cache

docs-cli: $(STAMP)
	$(VENV)/bin/python -m typer mimofm.cli.main utils docs --name mimofm --output docs/cli.md

# docs/api.md from the docstrings of mimofm.__all__ (tests/test_api_docs.py fails while it is stale)
docs-api: $(STAMP)
	$(VENV)/bin/python scripts/gen_api_docs.py
