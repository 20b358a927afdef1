# dream — set up, build, demo, test. Run `make help`.
SHELL := /bin/bash

# Offline model source: the shared mirror beside the repository when it exists (CI and this project's machines).
DREAM_MODEL_MIRROR ?= $(wildcard $(CURDIR)/../shared/models)
export DREAM_MODEL_MIRROR

SUDO := $(shell if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null; then echo sudo; fi)
SYSTEM_PACKAGES := libopenblas-dev libpng-dev libjpeg-dev libturbojpeg0-dev zlib1g-dev
TEST_PACKAGES := libonnx-testdata
DREAM := .build/release/dream
SAMPLE := samples/chelsea.png

.PHONY: help setup setup-test build demo test bench clean-outputs

help:
	@echo "make demo    install system packages, build (release), fetch the default model, classify and dream on a sample"
	@echo "make test    install system packages (and ONNX's test data), build (release), run the whole test suite"
	@echo "make bench   forward-pass and dream-step benchmarks of the default model"

# Installs only what is missing (dpkg -s), so that repeated runs are quick and need no network.
setup:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

setup-test: setup
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  ( $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing ) \
	  || echo "warning: could not install$$missing; the ONNX node tests will be skipped"; fi

build: setup
	swift build -c release --product dream

demo: build
	$(DREAM) classify $(SAMPLE)
	@mkdir -p out
	$(DREAM) $(SAMPLE) -o out/chelsea-dream.png
	@echo "The dream was written to out/chelsea-dream.png"

test: setup-test
	swift build -c release
	swift test -c release

bench: build
	$(DREAM) bench --size 224 --runs 20
	$(DREAM) bench --size 512 --runs 10
