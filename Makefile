# openstack-ec2-lab: `make lab-up`, `make test`. Every target installs what it needs first.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= configs/lab.yaml
TARGET ?= sim
LAB     = $(BIN)/lab --config $(CONFIG) --target $(TARGET)

.PHONY: help venv host-deps test test-unit lab-up lab-install lab-verify lab-down lab-status lab-plan lab-open bench bench-floor bench-twin bench-cloud clean

help:
	@echo "make lab-up | lab-install | lab-verify | lab-down | lab-status | lab-plan | lab-open   (CONFIG=$(CONFIG) TARGET=$(TARGET))"
	@echo "make test        the whole suite (unit tests on moto + the sim end-to-end run)"
	@echo "make test-unit   without the end-to-end run"
	@echo "make bench       provisioning benchmark against moto"
	@echo "make bench-floor the twin's install floor: one apt-get of the lab's packages in one container (root)"
	@echo "make bench-twin  the floor, then a whole lab on the twin: every command's time, install / floor (root)"
	@echo "make bench-cloud a small load on the running lab's cloud: requests, errors, p50/p99 (after lab-install)"

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/.installed

# The twin needs a few Debian packages on the host; only the sim target asks for them.
host-deps:
	@if [ "$(TARGET)" = sim ]; then scripts/host-deps.sh; fi

test: venv
	@TARGET=sim scripts/host-deps.sh --for-tests
	$(BIN)/pytest -ra

test-unit: venv
	$(BIN)/pytest -ra -m "not e2e"

lab-up: venv host-deps
	$(LAB) up

lab-install: venv
	$(LAB) install

lab-verify: venv
	$(LAB) verify

lab-down: venv
	$(LAB) down

lab-status: venv
	$(LAB) status

lab-plan: venv
	$(LAB) plan

lab-open: venv
	$(LAB) open

bench: venv
	$(BIN)/python bench/provision_bench.py

bench-floor: venv
	@TARGET=sim scripts/host-deps.sh
	$(BIN)/python bench/sim_install_floor.py

bench-twin: venv
	@TARGET=sim scripts/host-deps.sh
	$(BIN)/python bench/sim_lab_bench.py --config $(CONFIG)

bench-cloud: venv
	$(BIN)/python bench/cloud_load_bench.py --config $(CONFIG)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
