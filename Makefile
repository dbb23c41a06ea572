# `make demo` and `make test` work on a fresh clone: they create .venv and install jaflow first.
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2

.PHONY: install demo test test-fast lint report clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.13.0 resolves to the local CPU wheel here; on GPU machines pip picks a CUDA build.
	$(PY) -m pip install -q "torch==2.13.0" -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/snakemake --cores $(CORES)

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not workflow and not slurm"

lint: install
	$(VENV)/bin/ruff check src workflow/scripts tests bench
	$(VENV)/bin/ruff format --check src workflow/scripts tests bench
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(VENV)/bin/snakemake --lint --directory $$(mktemp -d)

report: install
	$(VENV)/bin/snakemake --cores $(CORES) --report report.html

clean:
	rm -rf results logs .snakemake report.html report.zip
