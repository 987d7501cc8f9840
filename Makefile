# coinfer: one command to set up and run the demo, one to set up and run the tests.
#   make demo   - venv + pinned deps + data set, then the all-in-one demo
#   make test   - venv + pinned deps + data set, then every test (lint, unit, property, ROS graph)
#   make experiment - (root) every policy on two emulated hosts with a shaped link; regenerates docs/results.md
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.coinfer-installed
FMNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
# ROS hygiene for everything started from here: discovery never leaves the host.
ROS_ENV = AMENT_PREFIX_PATH="$(CURDIR)/$(VENV)" ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
          ROS_LOG_DIR="$${ROS_LOG_DIR:-$$(mktemp -d)}"
DEMO_ARGS ?=
EXPERIMENT_ARGS ?=
TESTBED_BENCH := bench/bench_reliability.py bench/bench_soak.py

.PHONY: setup system-deps test demo experiment bench bench-testbed clean

setup: system-deps $(STAMP)

# Debian packages: the Fashion-MNIST data set and xmllint. Needs root (or sudo) when missing.
system-deps:
	@missing=""; \
	[ -f $(FMNIST) ] || missing="$$missing dataset-fashion-mnist"; \
	command -v xmllint >/dev/null || missing="$$missing libxml2-utils"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	    echo "error: need Debian packages:$$missing - run as root: apt-get update && apt-get install -y$$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): requirements-ros.txt requirements.txt requirements-dev.txt setup.py
	@command -v python3.11 >/dev/null || { echo "error: python3.11 is required (the ROS Jazzy wheels are cp311)" >&2; exit 1; }
	[ -x $(PY) ] || python3.11 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-ros.txt -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $(STAMP)

# Fast DDS shared-memory files of dead processes only: other ROS graphs on this machine keep theirs.
CLEAN_SHM = $(PY) -c 'from coinfer_edge.demo.harness import clean_stale_shm; clean_stale_shm()'

test: setup
	@$(CLEAN_SHM); \
	export $(ROS_ENV) ROS_DOMAIN_ID=$$(( $$$$ % 90 + 10 )); \
	$(PY) -m pytest -ra test; rc=$$?; \
	$(CLEAN_SHM); \
	if [ $$rc = 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: setup
	@export $(ROS_ENV); $(VENV)/bin/coinfer-demo $(DEMO_ARGS)

experiment: setup
	@export $(ROS_ENV); $(VENV)/bin/coinfer-experiment --repeats 3 --report docs/results.md $(EXPERIMENT_ARGS)

bench: setup
	@export $(ROS_ENV); for b in $(filter-out $(TESTBED_BENCH),$(wildcard bench/bench_*.py)); do \
	  echo "== $$b"; $(PY) $$b || exit 1; done

# The real-link testbed's benchmarks (root; the soak takes 10 minutes).
bench-testbed: setup
	@export $(ROS_ENV); for b in $(TESTBED_BENCH); do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build install log results .pytest_cache
