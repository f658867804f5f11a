# aftercommit: one binary, an HTTP API over embedded SQLite.
#   make run    installs what is missing, builds and serves on ./data/aftercommit.db
#   make test   installs, builds with ASan+UBSan and runs every doctest suite
SHELL := /bin/bash
JOBS  ?= $(shell nproc)
PORT  ?= 8080

# Debian packages the build and the tests need. `make deps` installs the ones
# missing and does nothing when all are there.
DEB_PACKAGES := build-essential cmake pkg-config libsqlitecpp-dev libsqlite3-dev \
  libcpp-httplib-dev nlohmann-json3-dev doctest-dev libcli11-dev libssl-dev \
  sqlite3 wrk

.PHONY: deps build run test tsan torture fuzz clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
	  -DAFTERCOMMIT_TESTS=OFF
	cmake --build build -j $(JOBS) --target aftercommit

run: build
	mkdir -p data
	./build/aftercommit serve --db data/aftercommit.db --port $(PORT)

# Debug build with AddressSanitizer + UndefinedBehaviorSanitizer, then every suite.
test: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAFTERCOMMIT_SANITIZE=address
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# ThreadSanitizer build running the suites (the concurrency ones are what it is for).
tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DAFTERCOMMIT_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -j $(JOBS)

# Crash torture, long form: the torture suite with ROUNDS kill -9 rounds
# (`make test` runs it with 20). Prints its figures on the last line.
ROUNDS ?= 200
torture: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAFTERCOMMIT_SANITIZE=address
	cmake --build build-asan -j $(JOBS) --target aftercommit torture_test
	AFTERCOMMIT_TORTURE_ROUNDS=$(ROUNDS) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./build-asan/torture_test

# libFuzzer targets (tests/fuzz/targets.h), each run FUZZ_SECONDS from the seed
# corpus. A crashing input is written to tests/fuzz/regressions/<target>/,
# which `make test` replays (fuzz_regressions_test); commit it with the fix.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := json_body email
FUZZ_CXX ?= clang++
FUZZ_FLAGS := -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. $$(pkg-config --cflags cpp-httplib)
FUZZ_LIBS := $$(pkg-config --libs cpp-httplib) -lssl -lcrypto
FUZZ_SOURCES := app/http.cpp services/email.cpp core/status.cpp
fuzz: deps
	mkdir -p build-fuzz
	set -e; for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_CXX) $(FUZZ_FLAGS) tests/fuzz/fuzz_$$t.cpp $(FUZZ_SOURCES) $(FUZZ_LIBS) -o build-fuzz/fuzz_$$t; \
	done
	set -eo pipefail; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t tests/fuzz/regressions/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS)s"; \
	  ./build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=70000 -timeout=10 \
	    -artifact_prefix=tests/fuzz/regressions/$$t/ -print_final_stats=1 \
	    build-fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | tee build-fuzz/fuzz_$$t.log | tail -15; \
	done

clean:
	rm -rf build build-asan build-tsan build-fuzz
