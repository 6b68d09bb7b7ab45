# bluegreen.aws developer entry points.  `make test` runs everything CI runs; `make demo` runs the main job.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# ansible-test needs the checkout laid out as ansible_collections/<namespace>/<name>.
TREE := .build/ansible_collections/bluegreen/aws
APT_PACKAGES := shellcheck iproute2 haproxy nginx-light wrk podman runc debootstrap openssh-client chromium-headless-shell
PYTEST_FLAGS ?= -n 2

LINK := .build/collections/ansible_collections/bluegreen/aws
# ansible-lint and molecule install and look up collections under ANSIBLE_HOME (~/.ansible by default): a copy of this
# collection left there by an earlier run would hide what this checkout has. Keep theirs inside the checkout.
ISOLATED := ANSIBLE_HOME=$(CURDIR)/.build/ansible-home ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build/collections

.PHONY: help deps images lint sanity targets molecule units integration test build clean demo demo-aws demo-local demo-stop bench ee

help:
	@echo "make demo         the main job, the AWS flow on the emulator: codedeploy v1, v2, a broken v3 rolled back"
	@echo "make demo-aws     all of it: codedeploy v1, v2, broken v3, rollback; alb v1, canary v2, rollback"
	@echo "make demo-local   one host: HAProxy and two app slots; v1, canary to v2, broken v3 rolled back, rollback"
	@echo "make test         lint, sanity, unit and integration tests (creates .venv, installs what it needs)"
	@echo "make lint | sanity | targets | molecule | units | integration   one part"
	@echo "make bench        failed requests per router and through the emulated ALB (canary, CodeDeploy blue/green), rollback latency, emulator start (prints tables)"
	@echo "make build        build the collection tarball"
	@echo "make ee           execution environment build context in .build/ee (EE_BUILD=1: also build it with podman)"

$(STAMP): requirements-dev.txt requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements.txt
	touch $@

deps: $(STAMP)
	tests/tools/ensure-apt.sh $(APT_PACKAGES)
	mkdir -p $(dir $(LINK)) && ln -sfn $(CURDIR) $(LINK)

# The main job on the embedded default, the local emulator (root: instances are network namespaces): an empty account
# provisioned, v1 and v2 released with CodeDeploy blue/green, a broken v3 stopped by its gates and rolled back.
demo: deps
	$(BIN)/python tests/tools/demo_aws.py --main

# One host, no AWS: HAProxy in front of two app slots (role local_bluegreen).
demo-local: deps
	tests/tools/demo.sh

# The AWS release flow on the local emulator (root: instances are network namespaces); see tests/tools/demo_aws.py.
demo-aws: deps
	$(BIN)/python tests/tools/demo_aws.py

bench: deps
	$(BIN)/python tests/bench/bench_switch.py

demo-stop:
	for f in .build/demo/run/*.pid; do [ -e "$$f" ] && $(BIN)/python roles/local_bluegreen/files/bluegreen_svc.py \
	  stop "$$(basename "$$f" .pid)" --dir .build/demo/run; done; true
	[ ! -e .build/demo-aws/emulator.pid ] || kill -TERM -- -"$$(cat .build/demo-aws/emulator.pid)" 2>/dev/null; \
	  rm -f .build/demo-aws/emulator.pid

lint: deps
	$(BIN)/ruff check .
	$(BIN)/black --check --quiet .
	PATH=$(BIN):$$PATH $(ISOLATED) $(BIN)/ansible-lint --offline -q
	$(BIN)/antsibull-changelog lint

$(TREE): deps
	rm -rf .build/ansible_collections
	mkdir -p $(TREE)
	git ls-files -co --exclude-standard -z | xargs -0 sh -c 'for f; do [ ! -e "$$f" ] || cp --parents "$$f" $(TREE)/; done' _
	# its own repository, so ansible-test does not see it as ignored files of this one
	git -C $(TREE) init -q
	# the dependencies beside it, where ansible-test looks for doc fragments and module_utils
	deps=$$($(BIN)/python -c 'import ansible_collections.amazon.aws as m, os; print(os.path.dirname(os.path.dirname(list(m.__path__)[0])))') && \
	  for c in amazon/aws community/aws; do mkdir -p .build/ansible_collections/$$c && cp -r $$deps/$$c/. .build/ansible_collections/$$c/; done

sanity: deps
	rm -rf .build/ansible_collections && $(MAKE) --no-print-directory $(TREE)
	tests/tools/install-get-pip-standin.sh $(BIN)/python
	cd $(TREE) && PATH=$(BIN):$$PATH $(BIN)/ansible-test sanity --venv --python 3.11 --color no

# ansible-test integration targets (cloud/aws) against the emulator; on AWS, run ansible-test with your own
# tests/integration/cloud-config-aws.ini (see its .template).
targets: deps
	rm -rf .build/ansible_collections && $(MAKE) --no-print-directory $(TREE)
	tests/tools/run-targets.sh $(BIN)/python $(CURDIR)/$(TREE)

# Container images for molecule and the role tests, built offline (debootstrap + podman import); kept once built.
images: deps
	tests/tools/build-image.sh localhost/bluegreen-base:bookworm
	tests/tools/build-image.sh localhost/bluegreen-base:trixie
	tests/tools/build-image.sh localhost/bluegreen-curl:bookworm bookworm python3,curl,ca-certificates
	tests/tools/build-demo-image.sh localhost/bluegreen-demo:1.0.0

# One molecule scenario per role under molecule/ (podman driver from molecule-plugins). ANSIBLE_REMOTE_USER: with a
# user set, the podman connection copies files with `podman cp` instead of writing into the path `podman mount`
# prints, which the controller cannot see on every host (a chroot such as ../shared/tools/fresh-machine).
molecule: images
	PATH=$(BIN):$$PATH $(ISOLATED) ANSIBLE_REMOTE_USER=root \
	  $(BIN)/molecule test --all

# pytest exits 5 when it collected no test: a run that tests nothing is a failure here.
PYTEST = run_pytest() { PATH=$(BIN):$$PATH $(BIN)/pytest "$$@" || { rc=$$?; \
  if [ $$rc -eq 5 ]; then echo "FAILED: pytest collected no test in $$*" >&2; fi; exit $$rc; }; }; run_pytest

units: deps
	$(PYTEST) -q tests/unit $(PYTEST_FLAGS)

integration: deps
	$(PYTEST) -q tests/emulator tests/integration $(PYTEST_FLAGS)

test: lint sanity targets molecule
	$(PYTEST) -q tests/unit tests/emulator tests/integration $(PYTEST_FLAGS)

build: deps
	$(BIN)/ansible-galaxy collection build --force --output-path .build/dist .

# The execution environment (execution-environment.yml): `ansible-builder create` writes the build context without a
# container engine; EE_BUILD=1 builds the image with podman (needs PyPI, Galaxy and the base image's registry).
EE_BUILD ?=
EE_TAG ?= localhost/bluegreen-aws-ee:0.1.0
ee: deps
	rm -rf .build/ee .build/ee-dist
	$(BIN)/ansible-galaxy collection build --force --output-path .build/ee-dist .
	$(BIN)/ansible-builder create --file execution-environment.yml --context .build/ee --output-filename Containerfile
	if [ -n "$(EE_BUILD)" ]; then command -v podman >/dev/null || { echo "EE_BUILD needs podman" >&2; exit 1; }; \
	  podman build -f .build/ee/Containerfile -t $(EE_TAG) .build/ee; fi

clean:
	rm -rf .build
