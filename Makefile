# transitd build. `make` builds build/transitd; `make asan` the sanitizer build;
# `make unit` the unit tests (`make unit-asan` under ASan and UBSan);
# `make run` and `make test` are the README's two commands.

PKGS     := libpq hiredis jansson libsodium libjwt uuid librabbitmq
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
DEPFLAGS  = -MMD -MP
ALLFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -pthread $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lz -lm -pthread
ASANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

SRC      := $(shell find src -name '*.c' | sort)
LIB_SRC  := $(filter-out src/main.c,$(SRC))
OBJ      := $(SRC:%.c=build/obj/%.o)
LIB_OBJ  := $(LIB_SRC:%.c=build/obj/%.o)
ASAN_OBJ := $(SRC:%.c=build/asan/%.o)
EMBED    := $(wildcard db/migrations/*.sql db/seed/*.sql) docs/openapi.json
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/unit/%)
UNIT_ASAN_BIN := $(UNIT_SRC:tests/unit/%.c=build/unit-asan/%)
ASAN_LIB_OBJ := $(LIB_SRC:%.c=build/asan/%.o)

# libFuzzer harnesses (clang from Debian): the library built again with
# coverage instrumentation, ASan and UBSan; one binary per harness.
FUZZ_CC    := clang
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_OBJ   := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_SECONDS ?= 60

.PHONY: all asan web unit unit-asan test run cluster test-cluster image test-image bench bench-app bench-cluster bench-async \
	clean fuzz fuzz-build test-faults

all: build/transitd web

build/gen/embedded.c: $(EMBED) scripts/embed.sh
	@sh scripts/embed.sh build/gen

build/gen/embedded.S: build/gen/embedded.c

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC     $<'
	@$(CC) $(ALLFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC     $< (asan)'
	@$(CC) $(ALLFLAGS) $(ASANFLAGS) $(DEPFLAGS) -c $< -o $@

build/obj/gen/embedded.o: build/gen/embedded.c build/gen/embedded.S
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -Isrc/store -c build/gen/embedded.c -o build/obj/gen/embedded_c.o
	$(CC) -c build/gen/embedded.S -o build/obj/gen/embedded_s.o
	ld -r build/obj/gen/embedded_c.o build/obj/gen/embedded_s.o -o $@

build/transitd: $(OBJ) build/obj/gen/embedded.o
	$(CC) $(CFLAGS) $^ $(LIBS) -o $@

build/transitd-asan: $(ASAN_OBJ) build/obj/gen/embedded.o
	$(CC) $(ASANFLAGS) $^ $(LIBS) -o $@

asan: build/transitd-asan web

# Swagger UI and the console's libraries come from npm; install scripts are
# not needed and not run. npm writes node_modules/.package-lock.json last.
web: web/node_modules/.package-lock.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# Unit tests link the library as an archive: a test that #includes the .c
# it tests (to reach its static functions) defines that module's symbols
# itself, so the archive's copy of the module is never pulled in.
build/libtransitd.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

build/asan/libtransitd.a: $(ASAN_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

build/unit/%: tests/unit/%.c build/libtransitd.a build/obj/gen/embedded.o
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(CFLAGS) -Isrc $< build/libtransitd.a build/obj/gen/embedded.o $(LIBS) $(shell pkg-config --libs cmocka) -o $@

build/unit-asan/%: tests/unit/%.c build/asan/libtransitd.a build/obj/gen/embedded.o
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(ASANFLAGS) -Isrc $< build/asan/libtransitd.a build/obj/gen/embedded.o $(LIBS) $(shell pkg-config --libs cmocka) -o $@

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC     $< (fuzz)'
	@$(FUZZ_CC) $(ALLFLAGS) -Wno-unused-command-line-argument $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c $< -o $@

build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) build/obj/gen/embedded.o
	@mkdir -p $(dir $@)
	@echo '  LD     $@'
	@$(FUZZ_CC) $(ALLFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -Isrc $< $(FUZZ_OBJ) build/obj/gen/embedded.o $(LIBS) -o $@

fuzz-build: $(FUZZ_BIN)

# Each harness for FUZZ_SECONDS (60 by default) from its seed corpus.
fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# Faults under load (bounded): see docs/RESILIENCE.md.
test-faults:
	@bash scripts/test-faults.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The same tests built with ASan and UBSan, against the library built so.
unit-asan: $(UNIT_ASAN_BIN)
	@set -e; for t in $(UNIT_ASAN_BIN); do echo "== $$t"; $$t; done

test:
	@bash scripts/test.sh

run:
	@bash scripts/run.sh

cluster:
	@bash scripts/cluster.sh

test-cluster:
	@bash scripts/test-cluster.sh

# The container image (podman, a locally built debian:12 base; deploy/README.md).
image:
	@bash scripts/image.sh

test-image:
	@bash scripts/test-image.sh

bench:
	@bash bench/run.sh

bench-app:
	@/usr/bin/python3 bench/app.py

bench-cluster:
	@bash bench/cluster.sh

bench-async:
	@/usr/bin/python3 bench/async.py

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
