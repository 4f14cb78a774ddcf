# lograil — plain GNU Makefile.  `make help` lists the targets.
#
# Build variants live in their own folders: build/ (default), build/asan
# (AddressSanitizer + UndefinedBehaviorSanitizer), build/tsan
# (ThreadSanitizer).  B selects the folder, SAN the sanitizer flags.

B       ?= build
.DEFAULT_GOAL := all
SAN     ?=
CC      ?= cc
PYTHON  := /usr/bin/python3
OPT     ?= -O2 -g

WARN    := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wshadow -Wpointer-arith -Werror
CPPFLAGS += -D_GNU_SOURCE -Ilib -Idaemon
CFLAGS  += -std=c11 $(OPT) $(WARN) -pthread $(SAN_CFLAGS)
LDFLAGS += -pthread $(SAN_CFLAGS)

ifeq ($(SAN),asan)
SAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ifeq ($(SAN),tsan)
SAN_CFLAGS := -fsanitize=thread -fno-omit-frame-pointer
endif

# Dependencies come from the system through pkg-config.  mk/deps.sh installs
# them on Debian when missing; the generated file caches the flags, and make
# re-reads itself once it exists.
NODEPS_GOALS := clean help distclean
ifeq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
else
-include $(B)/deps.mk
endif
$(B)/deps.mk: mk/deps.sh
	@mkdir -p $(@D)
	@sh mk/deps.sh
	@{ echo "DEP_CFLAGS := $$(pkg-config --cflags libuv libconfig zlib libzstd openssl libnats)"; \
	   echo "DEP_LIBS := $$(pkg-config --libs libuv libconfig zlib libzstd openssl libnats)"; \
	   echo "CHECK_CFLAGS := $$(pkg-config --cflags check)"; \
	   echo "CHECK_LIBS := $$(pkg-config --libs check)"; } > $@

LIB_SRC    := $(sort $(wildcard lib/*.c))
DAEMON_SRC := $(filter-out daemon/main.c daemon/ctl.c,$(sort $(wildcard daemon/*.c)))
LIB_OBJ    := $(LIB_SRC:%.c=$(B)/obj/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/obj/%.o)
UNIT_SRC   := $(sort $(wildcard tests/check_*.c))
UNIT_BIN   := $(UNIT_SRC:tests/%.c=$(B)/tests/%)

.SECONDARY:
.PHONY: all check unit integration systemd check-asan check-tsan run bench bench-e2e fuzz clean help install
all: $(B)/lograild $(B)/lograilctl $(B)/liblograil.a

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEP_CFLAGS) -MMD -MP -c $< -o $@

$(B)/liblograil.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/libdaemon.a: $(DAEMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/lograild: $(B)/obj/daemon/main.o $(B)/libdaemon.a $(B)/liblograil.a
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lm

$(B)/lograilctl: $(B)/obj/daemon/ctl.o
	$(CC) $(LDFLAGS) -o $@ $^

# One Check binary per module.  They link the daemon objects too, so that
# daemon/ modules (config, writer) can have suites of their own.
$(B)/tests/check_%: $(B)/obj/tests/check_%.o $(B)/libdaemon.a $(B)/liblograil.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(DEP_LIBS) -lm
$(B)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEP_CFLAGS) $(CHECK_CFLAGS) -MMD -MP -c $< -o $@

# ThreadSanitizer needs a fixed address-space layout on kernels with high
# mmap randomisation; setarch -R turns randomisation off for the test run.
ifeq ($(SAN),tsan)
RUNPFX := setarch $(shell uname -m) -R
export TSAN_OPTIONS ?= halt_on_error=1 exitcode=66 second_deadlock_stack=1 ignore_noninstrumented_modules=1
endif
ifeq ($(SAN),asan)
export ASAN_OPTIONS ?= detect_leaks=1 abort_on_error=0 exitcode=66
export UBSAN_OPTIONS ?= print_stacktrace=1 halt_on_error=1
endif
export CK_DEFAULT_TIMEOUT ?= 120
export LOGRAIL_SAN = $(SAN)

check: unit integration systemd

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	    echo "== $$t"; $(RUNPFX) $$t || fail=1; \
	done; exit $$fail

integration: $(B)/lograild $(B)/lograilctl
	LOGRAILD=$(abspath $(B)/lograild) LOGRAILCTL=$(abspath $(B)/lograilctl) $(RUNPFX) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# The unit files against the real systemd, booted as PID 1 of a throw-away
# container (tests/systemd); skipped, saying why, where that cannot be made.
# deb-deps (mk/deb.mk): test_syslog.py builds the .deb, so that its tests run
# rather than skip on a machine that never ran `make deb`.
systemd: $(B)/lograild $(B)/lograilctl deb-deps
	LOGRAILD=$(abspath $(B)/lograild) LOGRAILCTL=$(abspath $(B)/lograilctl) $(RUNPFX) $(PYTHON) -m pytest -q -p no:cacheprovider -rs tests/systemd

check-asan:
	$(MAKE) --no-print-directory B=build/asan SAN=asan OPT="-O1 -g" check
check-tsan:
	$(MAKE) --no-print-directory B=build/tsan SAN=tsan OPT="-O1 -g" check

# Everything the README's tour uses: the daemon and lograilctl.
run: $(B)/lograild $(B)/lograilctl
	@mkdir -p run log
	@echo "lograild: listening on run/lograil.sock (stream) and run/dgram.sock (datagram)"
	@echo "  send:  logger -u run/lograil.sock hello"
	@echo "  tail:  tail -F log/messages.log"
	@echo "  stop:  Ctrl-C"
	$(B)/lograild -c conf/lograild.dev.conf

# Benchmarks: every bench/*.c is one program linked with the libraries
# (the daemon's too, so that ingest and writer can be measured alone);
# bench/run.sh runs them (and builds the Rust baseline when rustc exists).
BENCH_BIN := $(patsubst bench/%.c,$(B)/bench/%,$(sort $(wildcard bench/*.c)))
$(B)/bench/%: bench/%.c $(B)/libdaemon.a $(B)/liblograil.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEP_CFLAGS) -o $@ $^ $(LDFLAGS) $(DEP_LIBS) -lm

bench: $(BENCH_BIN) $(B)/lograild
	@sh bench/run.sh $(B)

# End to end against rsyslog and syslog-ng (installs them when missing).
bench-e2e: all $(B)/bench/relp_blast
	/usr/bin/python3 bench/e2e/run.py --lograild $(abspath $(B)/lograild) --build $(abspath $(B))/e2e
	@# The RELP input workload (relp listener vs rsyslog imrelp) prints its own table.
	@sh bench/run-relp.sh $(B)
	@# The NATS JetStream workloads (flood, kill-node, kill-lograild): mk/nats.mk.
	@$(MAKE) --no-print-directory bench-nats

# make install [PREFIX=/usr/local] [DESTDIR=]: binaries, units, the example
# configuration (never over an existing one), sysusers entry, man pages.
PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
BINDIR  ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
install: $(B)/lograild $(B)/lograilctl
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/lograil
	install -m 0755 $(B)/lograild $(DESTDIR)$(SBINDIR)/lograild
	install -m 0755 $(B)/lograilctl $(DESTDIR)$(BINDIR)/lograilctl
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/lograild.service.in > $(DESTDIR)$(UNITDIR)/lograild.service
	install -m 0644 systemd/lograild.socket $(DESTDIR)$(UNITDIR)/lograild.socket
	install -m 0644 systemd/lograil.sysusers $(DESTDIR)$(SYSUSERSDIR)/lograil.conf
	install -m 0644 man/lograild.8 man/lograilctl.8 $(DESTDIR)$(MANDIR)/man8/
	[ -e $(DESTDIR)$(SYSCONFDIR)/lograil/lograild.conf ] || \
	    install -m 0644 conf/lograild.conf $(DESTDIR)$(SYSCONFDIR)/lograil/lograild.conf
	@echo "installed; create the user with systemd-sysusers, then: systemctl enable --now lograild.socket lograild.service"

clean:
	rm -rf build

help:
	@echo "make             build build/lograild, build/lograilctl and build/liblograil.a"
	@echo "make run         build lograild and lograilctl, start the daemon in the foreground (conf/lograild.dev.conf)"
	@echo "make check       build and run every test (unit and integration)"
	@echo "make check-asan  the same under AddressSanitizer + UBSan (build/asan)"
	@echo "make check-tsan  the same under ThreadSanitizer (build/tsan)"
	@echo "make bench       run the benchmarks (channel, parser, formats, ingest, writer)"
	@echo "make bench-e2e   end to end against rsyslog and syslog-ng (then RELP input and bench-nats)"
	@echo "make bench-forward  forwarding against rsyslog omfwd/omrelp and a floor relay"
	@echo "make bench-nats  NATS JetStream output: flood against a floor, a node and lograild killed"
	@echo "make install     install (PREFIX=/usr/local, DESTDIR=) binaries, units, config, man pages"

-include $(LIB_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(B)/obj/daemon/main.d $(UNIT_SRC:tests/%.c=$(B)/obj/tests/%.d)

# Extra rule files (fuzzing and the like) live in mk/*.mk.
include $(wildcard mk/*.mk)
