# Two commands do everything on a fresh machine (see README): `make demo` and `make test`.
# Both create the local virtual environment when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SEED   ?= 0
PRESET ?= quick
OUT    ?= runs/demo

.PHONY: venv demo test lint clean wheelhouse workshop

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e ".[notebooks,dev,birdnet]"
	touch $(STAMP)

venv: $(STAMP)

## The main job: render the quick world and its suites, then evaluate the baselines on them.
demo: $(STAMP)
	$(VENV)/bin/avexlab demo --preset $(PRESET) --seed $(SEED) --out $(OUT)

## The test suite (what CI runs).
test: $(STAMP)
	@bash scripts/ensure_chromium.sh
	$(PY) -m pytest -q -n 2 --dist loadfile

## The workshop (notebooks/workshop/README.md): prepare the course (world, embeddings, results) ...
WORKSHOP_SCALE ?= workshop
workshop: $(STAMP)
	$(VENV)/bin/avexlab workshop prepare --scale $(WORKSHOP_SCALE)

## ... and a folder of every wheel a laptop needs, to install with pip's index disabled:
##   python3 -m venv avexlab-env && avexlab-env/bin/python -m pip install --no-index --find-links wheelhouse -r wheelhouse/requirements.txt
WHEELHOUSE ?= wheelhouse
WHEELHOUSE_ARGS ?=
wheelhouse: $(STAMP)
	$(VENV)/bin/avexlab workshop wheelhouse --out $(WHEELHOUSE) $(WHEELHOUSE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check avexlab tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache runs $(WHEELHOUSE)
