# Two commands a new machine needs: `make demo` (set up + run the quickstart on the sandbox)
# and `make test` (set up + lint + type-check + tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test lint typecheck docs mutate clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

system-deps:  # chromium, bubblewrap, postgresql from Debian (installs as root, else says how)
	scripts/system-deps

demo: $(STAMP)
	cd examples/quickstart && EVALBATCH_HOME=$${EVALBATCH_HOME:-$(CURDIR)/.evalbatch} \
		../../$(BIN)/evalbatch run suite.yaml --sandbox --responder script:responses.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

test: system-deps lint typecheck
	$(BIN)/pytest -q -n 2  # two workers: the end-to-end tests mostly wait on processes

# Mutation testing of the money and trust modules ([tool.mutmut] in pyproject.toml, see
# docs/testing.md): not part of `test` (tens of minutes on 2 cores; more on a busy machine, see
# docs/testing.md); starts from scratch each time.
mutate: $(STAMP)
	rm -rf mutants
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mutmut run --max-children 2 > mutants.log 2>&1 \
		|| (tail -50 mutants.log; exit 1)
	mv mutants.log mutants/run.log
	$(BIN)/python scripts/mutation-score

docs: $(STAMP)
	$(BIN)/cog -r docs/cli.md

clean:
	rm -rf $(VENV) .evalbatch .pytest_cache .mypy_cache .ruff_cache mutants mutants.log
