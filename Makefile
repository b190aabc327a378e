# rtcd — the user's vocabulary. The build itself is CMake (CMakeLists.txt).
#   make          build build/rtcd and build/rtcctl
#   make run      install what is missing, build, start rtcd on the embedded defaults
#   make test     install what is missing, build, run every test (normal build, then
#                 AddressSanitizer + UndefinedBehaviorSanitizer build with the fuzzers)
#   make bench    run the benchmarks in bench/ (writes bench/results/)
#   make fuzz     run every libFuzzer target for FUZZ_SECONDS each
#   make clean    remove the build folders

JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 300
TEST_FUZZ_SECONDS ?= 30
CMAKE ?= cmake
CTEST_FLAGS ?= --output-on-failure -j 2

# bench-% (e.g. bench-parse) is a pattern rule: make skips implicit rules for .PHONY targets,
# so those names must not be listed here.
.PHONY: all build run test test-normal test-asan bench fuzz clean deps

all: build

deps:
	@scripts/deps.sh

build/Makefile: CMakeLists.txt
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: build/Makefile
	@$(CMAKE) --build build -j $(JOBS)

run: deps build
	@mkdir -p run
	./build/rtcd

test: deps
	@$(MAKE) --no-print-directory test-normal
	@$(MAKE) --no-print-directory test-asan

test-normal: build
	@echo "== tests: normal build (gcc) =="
	@cd build && ctest $(CTEST_FLAGS)

# The sanitizer build uses clang so the libFuzzer targets build in the same tree;
# ctest there also runs each fuzzer for TEST_FUZZ_SECONDS.
test-asan:
	@$(CMAKE) -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DRTCD_SANITIZE=ON -DRTCD_FUZZ=ON -DRTCD_FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) >/dev/null
	@$(CMAKE) --build build-asan -j $(JOBS)
	@echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer build (clang), fuzzers =="
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

fuzz:
	@scripts/deps.sh
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DRTCD_SANITIZE=ON -DRTCD_FUZZ=ON -DRTCD_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@$(CMAKE) --build build-fuzz -j $(JOBS)
	@cd build-fuzz && ctest $(CTEST_FLAGS) -L fuzz

bench: deps
	@scripts/deps.sh --bench
	@$(CMAKE) -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(CMAKE) --build build-bench -j $(JOBS)
	@bench/run.sh all

bench-%: deps
	@scripts/deps.sh --bench
	@$(CMAKE) -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(CMAKE) --build build-bench -j $(JOBS)
	@bench/run.sh $*

clean:
	rm -rf build build-asan build-fuzz build-bench
