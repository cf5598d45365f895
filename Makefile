# Gatehouse build. `make run` builds and starts; `make check` runs every test.
# Sources are found by wildcard: a new src/<module>/*.c needs no Makefile edit.

CC      ?= cc
PKGS    := libpcre2-8 openssl libcares libcrypt libmaxminddb
# pkg-config runs when a recipe uses these (recursively expanded `=`), not when this file is
# read: on a fresh machine `make run` reads it before scripts/deps.sh installs libpcre2-dev.
CFLAGS_COMMON = -std=gnu11 -D_GNU_SOURCE -Isrc -Wall -Wextra -Werror -Wshadow \
                -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes -g \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

SRCS    := $(sort $(wildcard src/*/*.c))
MAIN    := src/main.c

# Variants: release (-O2 with link-time optimisation) and asan (ASan+UBSan, used by make check).
# LTO lets the compiler inline across the modules' seams (transport, exchange, upstream) as it
# did inside the single file they came from: bench/profile.sh counts ~9% fewer instructions per
# request with it. `make LTO=` builds without; clang wants LTO=-flto.
REL_DIR  := build/release
ASAN_DIR := build/asan
LTO     ?= -flto=auto
REL_CFLAGS  = $(CFLAGS_COMMON) -O2 $(LTO)
ASAN_CFLAGS = $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined -DGH_SANITIZE=1
ASAN_LDFLAGS := -fsanitize=address,undefined

REL_OBJS  := $(SRCS:%.c=$(REL_DIR)/%.o)
ASAN_OBJS := $(SRCS:%.c=$(ASAN_DIR)/%.o)

UNIT_SRCS := $(sort $(wildcard tests/unit/*/*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(ASAN_DIR)/tests/unit/%)

FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRCS:tests/fuzz/%.c=$(ASAN_DIR)/tests/fuzz/%_replay)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)

# `make install`: the release binary, the man page and an example config. PREFIX=/usr puts the
# config in /etc/gatehouse (as a distribution package would), any other PREFIX in PREFIX/etc;
# SYSCONFDIR=... overrides that. DESTDIR is prepended to every path (for staging and packages).
PREFIX     ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
BINDIR     := $(PREFIX)/bin
MAN8DIR    := $(PREFIX)/share/man/man8
CONFDIR    := $(SYSCONFDIR)/gatehouse

.PHONY: all build asan run check unit e2e fuzz bench profile deps format format-check clean \
        install uninstall

all: build

# The user-facing targets install what is missing first, then build in a sub-make, so that
# nothing that make decides while reading this file can predate the install.
build:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory $(REL_DIR)/gatehouse

deps:
	@scripts/deps.sh build

$(REL_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -MMD -MP -c $< -o $@

$(ASAN_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -MMD -MP -c $< -o $@

$(ASAN_DIR)/libgh.a: $(ASAN_OBJS)
	@rm -f $@; ar rcs $@ $^

$(REL_DIR)/gatehouse: $(REL_DIR)/src/main.o $(REL_OBJS)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(LIBS)

$(ASAN_DIR)/gatehouse: $(ASAN_DIR)/src/main.o $(ASAN_DIR)/libgh.a
	$(CC) $(ASAN_CFLAGS) $(ASAN_LDFLAGS) -o $@ $^ $(LIBS)

asan: $(ASAN_DIR)/gatehouse

# Unit tests: one binary per file; a test may #include the .c it tests to reach statics.
$(ASAN_DIR)/tests/unit/%: tests/unit/%.c $(ASAN_DIR)/libgh.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Itests/unit -o $@ $< $(ASAN_DIR)/libgh.a $(ASAN_LDFLAGS) $(LIBS) -lcmocka

# Fuzz targets also build as plain programs that replay their corpus (run by make check).
$(ASAN_DIR)/tests/fuzz/%_replay: tests/fuzz/%.c tests/fuzz/replay_main.c $(ASAN_DIR)/libgh.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $< tests/fuzz/replay_main.c $(ASAN_DIR)/libgh.a $(ASAN_LDFLAGS) $(LIBS)

build/fuzz/%: tests/fuzz/%.c $(SRCS)
	@mkdir -p $(dir $@)
	clang $(CFLAGS_COMMON) -O1 -fsanitize=fuzzer,address,undefined -o $@ $< \
	  $(filter-out $(MAIN),$(SRCS)) $(LIBS)

run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory $(REL_DIR)/gatehouse
	$(REL_DIR)/gatehouse $(ARGS)

check:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory asan $(UNIT_BINS) $(FUZZ_REPLAY) $(REL_DIR)/gatehouse
	@tests/run_all.sh

unit: asan $(UNIT_BINS)
	@tests/run_all.sh unit

e2e: asan
	@tests/run_all.sh e2e

fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@tests/fuzz/run_fuzz.sh $(FUZZ_BINS)

bench:
	@scripts/deps.sh bench
	-@$(MAKE) --no-print-directory $(REL_DIR)/gatehouse
	@bench/run.sh
	@[ "$${BENCH_PROFILE:-1}" = 0 ] || bench/profile.sh

# Instructions (callgrind) and syscalls (strace) per keep-alive request: exact counts.
profile:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory $(REL_DIR)/gatehouse
	@bench/profile.sh

# Depends on the release binary only (not on `build`): after `make build`, `sudo make install`
# copies what was built instead of building again as root. An existing config is never replaced.
install: $(REL_DIR)/gatehouse
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MAN8DIR)" "$(DESTDIR)$(CONFDIR)"
	install -m 755 $(REL_DIR)/gatehouse "$(DESTDIR)$(BINDIR)/gatehouse"
	install -m 644 docs/gatehouse.8 "$(DESTDIR)$(MAN8DIR)/gatehouse.8"
	@if [ -e "$(DESTDIR)$(CONFDIR)/gatehouse.conf" ]; then \
	  echo "kept the existing $(DESTDIR)$(CONFDIR)/gatehouse.conf"; \
	else \
	  echo "install -m 644 examples/reverse-proxy.conf $(DESTDIR)$(CONFDIR)/gatehouse.conf"; \
	  install -m 644 examples/reverse-proxy.conf "$(DESTDIR)$(CONFDIR)/gatehouse.conf"; \
	fi

# Removes the binary and the man page; the config only if it is still the example as shipped.
uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/gatehouse" "$(DESTDIR)$(MAN8DIR)/gatehouse.8"
	@if cmp -s examples/reverse-proxy.conf "$(DESTDIR)$(CONFDIR)/gatehouse.conf"; then \
	  echo "rm -f $(DESTDIR)$(CONFDIR)/gatehouse.conf"; \
	  rm -f "$(DESTDIR)$(CONFDIR)/gatehouse.conf"; \
	  rmdir "$(DESTDIR)$(CONFDIR)" 2>/dev/null || true; \
	elif [ -e "$(DESTDIR)$(CONFDIR)/gatehouse.conf" ]; then \
	  echo "kept $(DESTDIR)$(CONFDIR)/gatehouse.conf (changed since it was installed)"; \
	fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(REL_DIR)/src/main.d $(ASAN_DIR)/src/main.d
