# Two commands: `make demo` runs the product on its embedded defaults, `make test` runs the suite.
# Both set up everything they need on a machine that has only Python.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000

.PHONY: install demo test clean demo-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is pinned through constraints.txt: an unpinned torch pulls a multi-gigabyte CUDA build.
$(INSTALLED): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(INSTALLED)

demo: install
	$(BIN)/python manage.py serve_demo --migrate --seed --host $(DEMO_HOST) --port $(DEMO_PORT)

test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

clean:
	rm -rf var/ .pytest_cache

# The demo's pre-trained model, modeling/data/demo_model.pt, rebuilt as committed: phantoms read by
# three simulated readers, fused by the consensus, trained by the platform's own training, all on a
# scratch database, media folder and broker of its own (nothing of the demo's is touched).
DEMO_MODEL_ENV := DATABASE_URL=sqlite:///$(CURDIR)/var/demo-model/db.sqlite3 MEDIA_ROOT=$(CURDIR)/var/demo-model/media BROKER_DIR=$(CURDIR)/var/demo-model/broker
demo-model: install
	rm -rf var/demo-model && mkdir -p var/demo-model
	$(DEMO_MODEL_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_MODEL_ENV) $(BIN)/python manage.py build_demo_model --project demo-model --patients 60 --seed 11 --epochs 40 --time-budget 540 --foot-time-budget 240 --threads 2
