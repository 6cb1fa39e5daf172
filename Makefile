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
