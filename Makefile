# reeldb build. `make` builds build/reel and build/reeld; `make test` runs every test.
# Sources are found by wildcard so that a new module needs no edit here:
#   engine/*.c index/*.c  -> build/libreel.a
#   tools/*.c             -> build/reel (the CLI, benchmarks included)
#   server/*.c            -> build/libreelsrv.a (the HTTP API layer), and with
#                            server/main.c -> build/reeld; tools and tests link it too
#   tests/*/test_*.c      -> one Criterion binary each, build/tests/<dir>_<name>
#   tests/fuzz/*_fuzz.c   -> libFuzzer targets (make fuzz, clang)

CC      ?= cc
BUILD   ?= build
# python3: make test reads reel export's output back with Python's csv and json.
DEBIAN_PKGS := liblmdb-dev liburing-dev libxxhash-dev libzstd-dev libuv1-dev \
               libhttp-parser-dev libjansson-dev libroaring-dev libcriterion-dev pkg-config \
               python3
FUZZ_PKGS   := clang libclang-rt-14-dev
# The baselines of `make bench` (reel bench http against Redis, reel bench
# feed against hnswlib): installed by the bench target only, never by all or test.
BENCH_PKGS  := redis-server redis-tools libhnswlib-dev

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wvla -Wundef -Wno-missing-field-initializers -Wno-format-truncation
OPT     ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) -fno-omit-frame-pointer -I. -MMD -MP
LDLIBS  += -luring -lxxhash -lzstd -llmdb -luv -lhttp_parser -ljansson -lroaring -lpthread -lm

ENGINE_SRC := $(wildcard engine/*.c index/*.c)
TOOLS_SRC  := $(wildcard tools/*.c)
SERVER_SRC := $(wildcard server/*.c)
TEST_SRC   := $(wildcard tests/unit/test_*.c tests/integration/test_*.c tests/fault/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/*_fuzz.c)

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
TOOLS_OBJ  := $(TOOLS_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_OBJ := $(filter-out %/server/main.o,$(SERVER_SRC:%.c=$(BUILD)/obj/%.o))
SERVER_MAIN := $(filter %/server/main.o,$(SERVER_SRC:%.c=$(BUILD)/obj/%.o))
SRVLIB     := $(BUILD)/libreelsrv.a
TEST_BIN   := $(foreach t,$(TEST_SRC),$(BUILD)/tests/$(subst /,_,$(patsubst tests/%.c,%,$(t))))
LIB        := $(BUILD)/libreel.a
# The reference render worker: tools/render/*.c -> build/reel-render. Its
# frame renderer has a CUDA twin (render.cu), built when nvcc exists; else
# cuda_stub.c stands in and the worker renders with C.
# nvcc may be a wrapper script elsewhere on PATH (e.g. /usr/local/bin/nvcc),
# so the toolkit's root comes from nvcc itself (--dryrun prints TOP=), and
# CUDA is only used when libcudart is really there to link against.
NVCC       := $(shell command -v nvcc 2>/dev/null)
ifneq ($(NVCC),)
CUDA_TOP   := $(shell $(NVCC) --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | \
                sed -n 's/^\#\$$ TOP=//p' | head -n1)
CUDART     := $(firstword $(wildcard $(CUDA_TOP)/lib64/libcudart.so \
                $(CUDA_TOP)/targets/*/lib/libcudart.so))
endif
RENDER_SRC := $(filter-out tools/render/cuda_stub.c,$(wildcard tools/render/*.c)) tools/http_client.c
RENDER_OBJ := $(RENDER_SRC:%.c=$(BUILD)/obj/%.o)
ifneq ($(CUDART),)
RENDER_OBJ += $(BUILD)/obj/tools/render/render_cu.o
CUDA_LIB   := $(abspath $(dir $(CUDART)))
RENDER_LIBS := -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lcudart -lstdc++
else
RENDER_OBJ += $(BUILD)/obj/tools/render/cuda_stub.o
RENDER_LIBS :=
endif
BINS       := $(BUILD)/reel $(if $(SERVER_MAIN),$(BUILD)/reeld) \
              $(if $(wildcard tools/render/*.c),$(BUILD)/reel-render)

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.PHONY: all deps test test-only bench asan tsan fuzz fuzz-smoke run clean valgrind
.DEFAULT_GOAL := all

all: deps $(BINS)

# Installs each missing Debian package; a no-op (no apt-get at all) when all are there.
deps:
	@missing=""; for p in $(DEBIAN_PKGS) $(EXTRA_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "deps: run as root or install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The server's API layer is a library of its own so that the CLI (imports,
# the load generator) and tests use the same request parsing as reeld.
$(SRVLIB): $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# hnswlib, the baseline of `reel bench feed` (header-only C++): when its
# header exists, tools/hnswlib_shim.cpp (extern "C") joins build/reel and
# bench_feed.c is built with REEL_HAVE_HNSWLIB; a stamp named after the
# choice rebuilds bench_feed.o when it changes.
HNSWLIB_H     := $(wildcard /usr/include/hnswlib/hnswlib.h)
HNSWLIB_STAMP := $(BUILD)/obj/tools/hnswlib.$(if $(HNSWLIB_H),on,off)
ifneq ($(HNSWLIB_H),)
TOOLS_OBJ += $(BUILD)/obj/tools/hnswlib_shim.o
REEL_CXXLIBS := -lstdc++
$(BUILD)/obj/tools/bench_feed.o: CFLAGS += -DREEL_HAVE_HNSWLIB
$(BUILD)/obj/tools/hnswlib_shim.o: tools/hnswlib_shim.cpp $(HNSWLIB_H)
	@mkdir -p $(dir $@)
	g++ -std=c++17 $(OPT) -w -I. -c $< -o $@
endif
$(BUILD)/obj/tools/bench_feed.o: $(HNSWLIB_STAMP)
$(HNSWLIB_STAMP):
	@mkdir -p $(dir $@)
	@rm -f $(dir $@)hnswlib.on $(dir $@)hnswlib.off && touch $@

$(BUILD)/reel: $(TOOLS_OBJ) $(SRVLIB) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TOOLS_OBJ) $(SRVLIB) $(LIB) $(LDLIBS) $(REEL_CXXLIBS)

$(BUILD)/reeld: $(SERVER_MAIN) $(SRVLIB) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(SERVER_MAIN) $(SRVLIB) $(LIB) $(LDLIBS)

$(BUILD)/obj/tools/render/render_cu.o: tools/render/render.cu tools/render/render_pixel.h \
                                      tools/render/render_cuda.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -I. -c $< -o $@

$(BUILD)/reel-render: $(RENDER_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(RENDER_OBJ) $(LIB) $(LDLIBS) $(RENDER_LIBS)

define test_rule
$(BUILD)/tests/$(subst /,_,$(patsubst tests/%.c,%,$(1))): $(BUILD)/obj/$(1:.c=.o) $(BUILD)/obj/tests/harness.o $(SRVLIB) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lcriterion
endef
$(foreach t,$(TEST_SRC),$(eval $(call test_rule,$(t))))

# Every test binary runs; the build fails if any fails. REEL_BIN lets
# integration tests find the binaries they drive.
test: all $(TEST_BIN)
	@$(MAKE) --no-print-directory test-only BUILD=$(BUILD)

# Storage tests run once per I/O backend: io_uring (when this machine can set
# it up) and the sync fallback.
STORAGE_TEST_PAT := /unit_test_log /unit_test_io /unit_test_zseg /unit_test_verify /fault_ /integration_test_crash
test-only:
	@backends="sync"; if $(BUILD)/reel io-probe >/dev/null; then backends="uring sync"; \
	  else echo "note: io_uring unavailable here ($$($(BUILD)/reel io-probe)); storage tests run on sync only"; fi; \
	fail=0; pass=0; bad=0; out=$$(mktemp); for t in $(TEST_BIN); do \
	  runs="auto"; for p in $(STORAGE_TEST_PAT); do case "$$t" in *$$p*) runs="$$backends";; esac; done; \
	  for io in $$runs; do \
	    echo "== $$t (io: $$io)"; \
	    if env $$( [ $$io != auto ] && echo REEL_IO=$$io ) REEL_BIN=$(abspath $(BUILD)) $$t $(TEST_ARGS) 2>&1 | tee $$out; \
	    then :; else bad=$$((bad+1)); echo "FAILED: $$t (io: $$io)"; fi; \
	    line=$$(grep -a "Synthesis: Tested:" $$out | tail -1); \
	    p=$$(echo "$$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p'); \
	    f=$$(echo "$$line" | sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1+\2/p'); \
	    if [ -z "$$p" ]; then bad=$$((bad+1)); echo "FAILED: $$t printed no result"; p=0; f=1; fi; \
	    pass=$$((pass+p)); fail=$$((fail+f)); \
	  done; \
	done; rm -f $$out; \
	echo "tests: $$pass passed, $$fail failed"; [ $$fail -eq 0 ] && [ $$bad -eq 0 ]

# Installs the baselines' packages first (BENCH_PKGS); without them (not root,
# no apt) the benchmarks still run and report "baseline": null.
bench: all
	@$(MAKE) --no-print-directory deps EXTRA_PKGS="$(BENCH_PKGS)" || \
	  echo "bench: baselines not installed (apt-get install $(BENCH_PKGS)); their ratios are null" >&2
	@$(MAKE) --no-print-directory $(BUILD)/reel
	$(BUILD)/reel bench all $(BENCH_ARGS)

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan: deps
	$(MAKE) --no-print-directory test BUILD=build/asan OPT="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1

# ThreadSanitizer over the threaded core. Criterion cannot start under TSan
# (Snaipe/Criterion#274), so tests/tsan/*.c are plain programs: each runs
# the writer, log, index and reader threads at once and exits 0 when clean.
TSAN_SRC := $(wildcard tests/tsan/*.c)
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan OPT="-O1 -g -fsanitize=thread" \
	  LDFLAGS="-fsanitize=thread" build/tsan/libreel.a
	@for t in $(TSAN_SRC); do n=$$(basename $$t .c); \
	  $(CC) $(CFLAGS) -O1 -g -fsanitize=thread -o build/tsan/$$n $$t build/tsan/libreel.a $(LDLIBS) || exit 1; \
	  echo "== build/tsan/$$n"; TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build/tsan/$$n || exit 1; \
	done

# Memcheck over the integration tests (7 to 10 min on 2 cores; VALGRIND_TESTS
# picks others, and `make valgrind-all` runs every test, about 17 min). Criterion runs
# each test in a re-executed copy of its binary, and the tests exec reel, reeld
# and reel-render, so --trace-children=yes is what reaches the code under test:
# without it only Criterion's runner is checked. The system's programs the
# tests run (python3, zstd, cp) are not traced; /bin/sh is, for what
# system() runs of ours. Every process writes
# $(BUILD)/valgrind/<test>/<pid>.log; REEL_TEST_VALGRIND makes teardowns stop
# reeld and the workers with SIGTERM so that their leak check runs. The run
# fails when any log holds an error: a memory error, or a definite or indirect
# leak. Logs without a summary are processes killed on purpose (kill -9 tests).
# A test may fail from valgrind's slowdown (timing assertions, timeouts): such
# failures are listed, not counted (`make test` judges the tests), but a test
# binary that prints no result fails the run.
VALGRIND_TESTS ?= $(filter $(BUILD)/tests/integration_%,$(TEST_BIN))
.PHONY: valgrind-all
valgrind-all:
	@$(MAKE) --no-print-directory valgrind VALGRIND_TESTS="$(TEST_BIN)"
VALGRIND_JOBS  ?= 2
VALGRIND_FLAGS := --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
                  --error-exitcode=1 --num-callers=30 \
                  --trace-children-skip='/usr/*,/opt/*,*/.pyenv/*'
VALGRIND_ERR_RE := '== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest|Argument|[0-9,]+ (\([0-9, ]+direct, [0-9, ]+indirect\) )?bytes in [0-9,]+ blocks are (definitely|indirectly))'
valgrind: all $(VALGRIND_TESTS)
	@rm -rf $(BUILD)/valgrind; mkdir -p $(BUILD)/valgrind; start=$$(date +%s); \
	printf '%s\n' $(VALGRIND_TESTS) | xargs -P $(VALGRIND_JOBS) -I{} sh -c \
	  'n=$$(basename {}); mkdir -p $(BUILD)/valgrind/$$n; echo "== valgrind $$n"; \
	   REEL_TEST_VALGRIND=1 REEL_BIN=$(abspath $(BUILD)) valgrind $(VALGRIND_FLAGS) \
	     --log-file=$(BUILD)/valgrind/$$n/%p.log {} -j1 >$(BUILD)/valgrind/$$n.out 2>&1; \
	   echo "$$n: $$(grep -a "Synthesis:" $(BUILD)/valgrind/$$n.out || echo no result)"'; \
	logs="$$(find $(BUILD)/valgrind -name '*.log') /dev/null"; \
	bad=$$(grep -l 'ERROR SUMMARY: [1-9]' $$logs); \
	checked=$$(grep -l 'ERROR SUMMARY' $$logs | wc -l); killed=$$(grep -L 'ERROR SUMMARY' $$logs | grep -vc /dev/null); \
	progs=$$(grep -l 'ERROR SUMMARY' $$logs | xargs sed -n 's|^==[0-9]*== Command: [^ ]*/\([^ /]*\).*|\1|p' | \
	  sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $$1, $$2 }'); \
	grep -a -h '^\[FAIL\]' $(BUILD)/valgrind/*.out | sed 's/^/note: under valgrind: /'; \
	for f in $$bad; do echo "== $$f"; grep -m1 'Command:' $$f; grep -E -A20 $(VALGRIND_ERR_RE) $$f | head -80; done; \
	nores=$$(grep -a -L 'Synthesis:' $(BUILD)/valgrind/*.out); for f in $$nores; do echo "FAILED: $$f: no result"; done; \
	echo "valgrind: $$checked processes checked ($$progs; $$killed killed without a summary), \
	$$(echo $$bad | wc -w) with errors or leaks, $$(( $$(date +%s) - start )) s"; \
	[ -z "$$bad$$nores" ] && [ $$checked -gt 0 ]

# libFuzzer targets, each for FUZZ_SECONDS (default 60), with ASan and UBSan.
# The sources a target may need (the engine, the index, the server's API
# layer, the import readers) are compiled once with the fuzzer's coverage
# (fuzzer-no-link) into $(BUILD)/fuzz/libfuzzreel.a; each target links only
# the members it uses. FUZZ_TARGETS picks some (`make fuzz FUZZ_TARGETS=http_fuzz`);
# crash inputs land in $(BUILD)/fuzz/<target>-crash-*, new inputs in
# $(BUILD)/fuzz/<target>.corpus; tests/fuzz/<target>.dict, when there is one,
# is the target's dictionary. `make fuzz-smoke` runs each for 10 s.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(basename $(notdir $(FUZZ_SRC)))
FUZZ_WARN    := $(filter-out -Wno-format-truncation,$(WARN))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -I. -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_LIB_SRC := $(ENGINE_SRC) $(filter-out server/main.c,$(SERVER_SRC)) tools/import_read.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_LIB     := $(BUILD)/fuzz/libfuzzreel.a

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/%_fuzz: tests/fuzz/%_fuzz.c $(FUZZ_LIB)
	clang $(FUZZ_CFLAGS) $(FUZZ_WARN) -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $< $(FUZZ_LIB) $(LDLIBS)

# Each target runs as its own rule (fuzz-run-<target>), so `make -j2 fuzz`
# runs two at a time; a target's output goes to $(BUILD)/fuzz/<target>.log and
# is printed, ASan's report included, when the target fails. A crash, a leak,
# a timeout (-timeout=10) or a replayed corpus input that fails (the regress-*
# inputs run first) fails the rule and so the build.
FUZZ_RUNS := $(FUZZ_TARGETS:%=fuzz-run-%)
.PHONY: $(FUZZ_RUNS)
fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_PKGS="$(FUZZ_PKGS)"
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
	@$(MAKE) --no-print-directory $(FUZZ_RUNS)

$(FUZZ_RUNS): fuzz-run-%: $(BUILD)/fuzz/%
	@n=$*; mkdir -p $(BUILD)/fuzz/$$n.corpus; log=$(BUILD)/fuzz/$$n.log; \
	echo "== $$n: $(FUZZ_SECONDS) s (output in $$log)"; \
	dict=""; [ -f tests/fuzz/$$n.dict ] && dict="-dict=tests/fuzz/$$n.dict"; \
	if $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 $$dict \
	    -artifact_prefix=$(BUILD)/fuzz/$$n- $(BUILD)/fuzz/$$n.corpus tests/fuzz/corpus/$$n >$$log 2>&1; then \
	  echo "== $$n: ok, $$(sed -n 's/^stat::number_of_executed_units: *//p' $$log) runs, peak RSS \
	$$(sed -n 's/^stat::peak_rss_mb: *//p' $$log) MB"; \
	else tail -n 80 $$log; echo "FAILED: fuzz target $$n (whole output: $$log; inputs: $(BUILD)/fuzz/$$n-*)"; exit 1; fi

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

DATA ?= ./data
# Builds and starts reeld on 127.0.0.1:7070 with data in $(DATA). On an empty
# data directory --demo first loads a small demo world through the API's
# request parsing (users, follows, cameos, posts on several topics, likes,
# comments) and reeld prints a few curl commands to try.
run: all
	exec $(BUILD)/reeld --data $(DATA) --demo

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz -name '*.d' 2>/dev/null)
