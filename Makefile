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

.PHONY: help setup setup-test build demo test test-kernels test-kernels-run bench bench-compare fuzz fuzz-build fuzz-seeds fuzz-run clean-outputs

help:
	@echo "make demo    install system packages, build (release), fetch the default model, classify and dream on a sample"
	@echo "make test    install system packages (and ONNX's test data), build (release), run the whole test suite"
	@echo "make test-kernels  the numeric tests again under every OpenBLAS kernel family (and SIMD level) this CPU can run"
	@echo "make bench   forward-pass and dream-step benchmarks of the default model"
	@echo "make bench-compare  dream vs onnxruntime (forward) and vs PyTorch (dream step), interleaved rounds (optional Python)"
	@echo "make fuzz    libFuzzer + AddressSanitizer on the PNG, JPEG, ONNX, .npy and description parsers (FUZZ_SECONDS each)"

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
	swift build -c release --build-tests
	@$(MAKE) --no-print-directory test-kernels-run
	@swift test -c release --skip-build; status=$$?; \
	  echo "== ran on: $$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $$(nproc) cores;" \
	    "OpenBLAS families tested: $(strip $(KERNEL_FAMILIES))"; exit $$status

# OpenBLAS picks its GEMM kernels by CPU, and other kernels sum in another order: every numeric test (kernels,
# golden logits and activations, input gradients, ONNX node tests, whole-graph gradients, dreams) runs again under
# each kernel family this CPU can execute, so that the next CPU does not surprise us. Each run must report the
# family it asked for (the gradient tests print it), or OpenBLAS silently used another one.
# Our own C kernels (CKernels) have SIMD levels: their tests run every level the CPU supports in each run, and the
# Prescott run is also the portable combination (DREAM_SIMD=baseline, as `dream --portable`), so every other numeric
# test meets the baseline kernels once and the AVX2/AVX-512 ones in the other runs.
NUMERIC_TESTS := TensorsTests|ExecutorWeightCacheTests|GoldenModelTests|InputGradientTests|RoundingTieComparisonTests|ONNXNodeConformanceTests|GraphGradientTests|LayerFusionTests|ONNXExportTests|DeepDreamTests|MemoryBoundLayerTests
KERNEL_FAMILIES := $(shell flags="$$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)"; \
	has() { for f in "$$@"; do echo "$$flags" | grep -qw -- "$$f" || return 1; done; }; \
	has pni && echo Prescott; has sse4_2 && echo Nehalem; has avx && echo Sandybridge; \
	has avx2 fma && echo Haswell Zen; has avx512f avx512bw avx512dq avx512vl && echo SkylakeX)

test-kernels: setup-test
	swift build -c release --build-tests
	@$(MAKE) --no-print-directory test-kernels-run

test-kernels-run:
	@for family in $(KERNEL_FAMILIES); do \
	  simd=$$([ $$family = Prescott ] && echo baseline || echo ""); \
	  echo "== numeric tests with OPENBLAS_CORETYPE=$$family DREAM_SIMD=$${simd:-(best)}"; \
	  log=$$(mktemp); \
	  ( if [ -n "$$simd" ]; then export DREAM_SIMD=$$simd; else unset DREAM_SIMD; fi; \
	    OPENBLAS_CORETYPE=$$family swift test -c release --skip-build --filter '$(NUMERIC_TESTS)|SIMDKernelTests' ) >$$log 2>&1; status=$$?; \
	  grep -E 'BLAS [A-Za-z0-9]+\]|SIMD levels|error:' $$log | cut -c1-240 | sed 's/^/   /'; grep -E 'Executed [0-9]+ tests' $$log | tail -1 | sed 's/^[[:space:]]*/   /'; \
	  if [ $$status -ne 0 ]; then echo "numeric tests failed with OPENBLAS_CORETYPE=$$family"; rm -f $$log; exit 1; fi; \
	  if ! grep -q "\[BLAS $$family\]" $$log; then echo "OpenBLAS did not use the $$family kernels"; rm -f $$log; exit 1; fi; \
	  if [ -n "$$simd" ] && ! grep -q "\[SIMD $$simd\]" $$log; then echo "the C kernels did not run at SIMD level $$simd"; rm -f $$log; exit 1; fi; \
	  rm -f $$log; \
	done; echo "numeric tests passed under: $(KERNEL_FAMILIES) (SIMD levels: every one the CPU supports in the kernel tests)"

bench: build
	$(DREAM) bench --size 224 --runs 20
	$(DREAM) bench --size 512 --runs 10

# Side by side with other engines (Tests/Benchmarks/compare.py). onnxruntime goes into a throwaway venv; the
# dream-step comparison needs Debian's python3-torch and python3-onnx and is skipped, saying so, without them.
BENCH_VENV := .build/bench-venv
bench-compare: build
	@test -x $(BENCH_VENV)/bin/python || (python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q onnxruntime numpy)
	$(BENCH_VENV)/bin/python Tests/Benchmarks/compare.py --dream $(DREAM)
	@if /usr/bin/python3 -c "import torch, onnx" 2>/dev/null; then \
	  $(BENCH_VENV)/bin/python Tests/Benchmarks/compare.py --dream $(DREAM) --mode dream --sizes 224 512 1024 --rounds 3 --runs 5; \
	else echo "skipping the dream-step comparison: /usr/bin/python3 lacks torch or onnx (apt install python3-torch python3-onnx)"; fi

# Fuzzing: the library modules a target needs are compiled with -sanitize=fuzzer,address straight from Sources/
# (SwiftPM never builds Tests/Fuzz), each target is linked with libFuzzer, then run for FUZZ_SECONDS with seeds.
# Crashes land in .build/fuzz/crashes/<target>/; every one found becomes a regression test.
FUZZ_SECONDS ?= 60
FUZZ := .build/fuzz
FUZZ_FLAGS := -O -sanitize=fuzzer,address -parse-as-library -I $(FUZZ) -I Sources/CBLAS -I Sources/CPNG -I Sources/CJPEG \
  -I Sources/CKernels/include
CKERNELS_SOURCES := $(wildcard Sources/CKernels/*.c)
CKERNELS_OBJECTS = $(patsubst Sources/CKernels/%.c,$(FUZZ)/CKernels-%.o,$(CKERNELS_SOURCES))
PROTOBUF_SOURCES = $(wildcard .build/checkouts/swift-protobuf/Sources/SwiftProtobuf/*.swift)

# module name, object, sources
define fuzz_module
	swiftc $(FUZZ_FLAGS) -module-name $(1) -package-name dream_fuzz -emit-module -emit-module-path $(FUZZ)/$(1).swiftmodule -wmo -c $(2) -o $(FUZZ)/$(1).o
endef

fuzz-build: setup
	@test -n "$(PROTOBUF_SOURCES)" || swift package resolve
	@mkdir -p $(FUZZ)
	$(call fuzz_module,SafeIO,$(wildcard Sources/SafeIO/*.swift))
	$(call fuzz_module,Parallel,$(wildcard Sources/Parallel/*.swift))
	$(call fuzz_module,Imaging,$(wildcard Sources/Imaging/*.swift))
	for f in $(CKERNELS_SOURCES); do \
	  clang -O2 -fsanitize=address -I Sources/CKernels/include -c $$f -o $(FUZZ)/CKernels-$$(basename $$f .c).o || exit 1; done
	$(call fuzz_module,Tensors,$(shell find Sources/Tensors -name '*.swift'))
	$(call fuzz_module,SwiftProtobuf,$(wildcard .build/checkouts/swift-protobuf/Sources/SwiftProtobuf/*.swift))
	$(call fuzz_module,Network,$(shell find Sources/Network -name '*.swift'))
	$(call fuzz_module,Models,$(wildcard Sources/Models/*.swift))
	swiftc $(FUZZ_FLAGS) Tests/Fuzz/FuzzPNG.swift $(FUZZ)/Imaging.o $(FUZZ)/SafeIO.o $(FUZZ)/Parallel.o -o $(FUZZ)/fuzz-png
	swiftc $(FUZZ_FLAGS) Tests/Fuzz/FuzzJPEG.swift $(FUZZ)/Imaging.o $(FUZZ)/SafeIO.o $(FUZZ)/Parallel.o -o $(FUZZ)/fuzz-jpeg
	swiftc $(FUZZ_FLAGS) Tests/Fuzz/FuzzNPY.swift $(FUZZ)/Network.o $(FUZZ)/Tensors.o $(CKERNELS_OBJECTS) $(FUZZ)/SwiftProtobuf.o $(FUZZ)/SafeIO.o $(FUZZ)/Parallel.o -o $(FUZZ)/fuzz-npy
	swiftc $(FUZZ_FLAGS) Tests/Fuzz/FuzzONNX.swift $(FUZZ)/Network.o $(FUZZ)/Tensors.o $(CKERNELS_OBJECTS) $(FUZZ)/SwiftProtobuf.o $(FUZZ)/SafeIO.o $(FUZZ)/Parallel.o -o $(FUZZ)/fuzz-onnx
	swiftc $(FUZZ_FLAGS) Tests/Fuzz/FuzzDescription.swift $(FUZZ)/Models.o $(FUZZ)/Network.o $(FUZZ)/Imaging.o $(FUZZ)/Tensors.o \
	  $(CKERNELS_OBJECTS) $(FUZZ)/SwiftProtobuf.o $(FUZZ)/SafeIO.o $(FUZZ)/Parallel.o -o $(FUZZ)/fuzz-description

fuzz-seeds:
	@mkdir -p $(FUZZ)/seeds/jpeg $(FUZZ)/seeds/onnx
	python3 Tests/Fuzz/make-seeds.py $(FUZZ)/seeds
	cp samples/*.png $(FUZZ)/seeds/png/
	cp samples/*.jpg $(FUZZ)/seeds/jpeg/; cp $(wildcard ../shared/images/*.jpg) $(FUZZ)/seeds/jpeg/ 2>/dev/null || true
	for d in /usr/share/libonnx-testdata/data/node/test_{conv,maxpool,averagepool,lrn,softmax,concat,reshape,pad,gemm,matmul,batchnorm,flatten,add}*; do \
	  [ -f $$d/model.onnx ] && cp $$d/model.onnx $(FUZZ)/seeds/onnx/$$(basename $$d).onnx; done; true
	cp $(wildcard ../shared/models/*.json) $(FUZZ)/seeds/description/ 2>/dev/null || true

fuzz: fuzz-build fuzz-seeds fuzz-run

# Runs the already built targets (make fuzz-run FUZZ_TARGETS=onnx FUZZ_SECONDS=600 to focus on one).
FUZZ_TARGETS ?= png jpeg npy onnx description
fuzz-run:
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ)/corpus/$$t $(FUZZ)/crashes/$$t; \
	  echo "== fuzz-$$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=0 $(FUZZ)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ)/crashes/$$t/ $(FUZZ)/corpus/$$t $(FUZZ)/seeds/$$t 2>&1 \
	    | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+== ?ERROR|SUMMARY|artifact_prefix|Test unit written|.*deadly signal)" ; \
	done; echo "crashes:"; find $(FUZZ)/crashes -type f | sed 's/^/  /'
