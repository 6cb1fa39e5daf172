# GraftWatch: the two set-up commands on a fresh Debian 12 machine.
#   make demo   installs what is needed, builds, and runs the main job on a built-in demo study
#   make test   installs what is needed, builds, and runs the default test suite (labels unit, app,
#               integration, external; 'slow' excluded: `make test-all` runs everything)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=Release
CTEST_ARGS ?=

.PHONY: all bootstrap configure build demo test test-all docs format format-check clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

configure: bootstrap
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest -LE slow -j $(JOBS) --output-on-failure --timeout 1500 $(CTEST_ARGS)

test-all: build
	@cd $(BUILD_DIR) && ctest -j $(JOBS) --output-on-failure $(CTEST_ARGS)

docs: build
	@cmake --build $(BUILD_DIR) --target gw_docs

format:
	@git ls-files '*.cxx' '*.h' '*.hxx' | xargs clang-format -i

format-check:
	@git ls-files '*.cxx' '*.h' '*.hxx' | xargs clang-format --dry-run -Werror

clean:
	@rm -rf $(BUILD_DIR)

# Hardening: sanitizers and fuzzing (clang + libFuzzer from Debian's clang/libclang-rt-14-dev).
#   make asan-test    ASan+UBSan build in $(ASAN_BUILD_DIR), unit tests of core/io/cli/dicom + malformed DICOM corpus
#   make fuzz-smoke   each libFuzzer target 60 s (CI); make fuzz: each target $(FUZZ_SECONDS) s (default 30 min)
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 1800
.PHONY: asan-test fuzz-smoke fuzz

asan-test: bootstrap
	@bash scripts/asan_test.sh $(ASAN_BUILD_DIR)

fuzz-smoke: bootstrap
	@bash fuzz/run_fuzz.sh 60 $(FUZZ_BUILD_DIR)

fuzz: bootstrap
	@bash fuzz/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BUILD_DIR)
