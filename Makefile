# mimofm: `make quickstart` runs the main job, `make test` runs the tests. Both bootstrap .venv first.
VENV ?= .venv
STAMP := $(VENV)/.bootstrapped
export DRJIT_LIBLLVM_PATH ?= $(firstword $(wildcard /usr/lib/*-linux-gnu/libLLVM-19.so /usr/lib/*-linux-gnu/libLLVM-19.so.1 /usr/lib/llvm-19/lib/libLLVM-19.so /usr/lib/llvm-19/lib/libLLVM.so.1))

.PHONY: quickstart test bench bootstrap clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

bootstrap: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/mimofm quickstart

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 -p no:cacheprovider tests

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_precoders.py

clean:
	rm -rf $(VENV) runs .pytest_cache
