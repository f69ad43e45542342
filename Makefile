# Recurrent Neural Networks from Math to Code: the two commands are `make book` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Tools the venv provides call each other by name (nbgrader runs `alembic`).
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help env book test exercises lint bench grade clean

help:
	@echo "make book       create .venv if missing, install, build the HTML book into _build/html"
	@echo "make test       same environment, then run the test suite"
	@echo "make exercises  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make lint       ruff"
	@echo "make bench      run the benchmarks in bench/"
	@echo "make grade A=ch02_rnn S=submitted [J=2]   grade a class (rnn-course grade)"

env: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-cpu.txt -e '.[course]'
	@# MovieLens-100k (ch14) ships as example data in RecBole's wheel; --no-deps keeps its heavy
	@# dependencies (ray, tensorboard, ...) out: the course only reads the data files.
	$(PY) -m pip install --quiet --no-deps 'recbole==1.2.1'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (rnn-course)" >/dev/null
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --path-output . --builder html -W -n --keep-going

test: $(STAMP)
	$(BIN)/pytest

# Writes exercises/<id>/ from solutions/<id>/ for every assignment (stubs in, hidden tests out).
exercises: $(STAMP)
	@for d in solutions/*/; do \
	  id=$$(basename $$d); \
	  $(BIN)/nbgrader generate_assignment $$id --force --log-level=WARN || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check rnn_ref tests bench
	$(BIN)/ruff format --check rnn_ref tests bench

bench: $(STAMP)
	$(PY) bench/bench_rnn_cpu.py
	$(PY) bench/bench_lstm_cpu.py
	$(PY) bench/bench_lstm_gpu.py
	$(PY) bench/bench_grading.py
	$(PY) bench/bench_timeseries.py
	$(PY) bench/bench_text.py
	$(PY) bench/bench_speech.py
	$(PY) bench/bench_recsys.py
	$(PY) bench/bench_vision.py
	$(PY) bench/bench_multimodal.py
	$(PY) bench/bench_multimodal_captioner.py

# Grade a class: make grade A=<assignment id> S=<submissions folder or zip> [J=<workers>]
grade: $(STAMP)
	@test -n "$(A)" -a -n "$(S)" || { echo "usage: make grade A=ch02_rnn S=submitted [J=2]"; exit 2; }
	$(BIN)/rnn-course grade $(A) $(S) $(if $(J),--jobs $(J))

clean:
	rm -rf _build
