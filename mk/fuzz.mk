# Fuzzing with libFuzzer: `make fuzz` builds every fuzz/fuzz_*.c with clang
# (libFuzzer + ASan + UBSan) into $(B)/fuzz/ and runs each for its share of
# FUZZ_SECONDS.  Each target grows its corpus in $(B)/fuzz/corpus/NAME,
# seeded from fuzz/corpus/NAME; crashes land in $(B)/fuzz/ as crash-*.
# Reproduce one with `$(B)/fuzz/fuzz_NAME $(B)/fuzz/crash-...`.
#
#   make fuzz                      # about a minute in all
#   make fuzz FUZZ_SECONDS=3600    # an hour
#   make fuzz FUZZ_ARGS=-jobs=4    # more libFuzzer flags

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_CFLAGS  := -std=c11 -g -O1 -Wall -Wextra -Werror \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_BIN   := $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)

# The library sources each target needs, no more: the fuzzers link neither
# libuv nor libconfig (fuzz_tls links OpenSSL: FUZZ_LIBS).  A new
# fuzz/fuzz_NAME.c gets a line here.
$(B)/fuzz/fuzz_frame: fuzz/fuzz_frame.c lib/frame.c
$(B)/fuzz/fuzz_parse: fuzz/fuzz_parse.c lib/syslog_parse.c lib/record.c
$(B)/fuzz/fuzz_relp: fuzz/fuzz_relp.c lib/relp.c
$(B)/fuzz/fuzz_logline: fuzz/fuzz_logline.c lib/logline.c lib/syslog_parse.c lib/record.c lib/format.c lib/buf.c
$(B)/fuzz/fuzz_kmsg: fuzz/fuzz_kmsg.c lib/kmsg.c lib/record.c
$(B)/fuzz/fuzz_tls: fuzz/fuzz_tls.c lib/tls.c lib/frame.c
$(B)/fuzz/fuzz_tls: FUZZ_LIBS = -lssl -lcrypto

$(B)/fuzz/fuzz_%: fuzz/fuzz_%.c $(wildcard lib/*.h) $(wildcard fuzz/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(FUZZ_LIBS)

.PHONY: fuzz-deps
fuzz-deps:
	@sh mk/deps.sh fuzz

$(FUZZ_BIN): | fuzz-deps

fuzz: $(FUZZ_BIN)
	@each=$$(( $(FUZZ_SECONDS) / $(words $(FUZZ_NAMES)) )); \
	[ $$each -gt 0 ] || each=1; \
	for t in $(FUZZ_NAMES); do \
	    mkdir -p $(B)/fuzz/corpus/$$t; \
	    echo "== fuzz_$$t for $$each s"; \
	    $(B)/fuzz/fuzz_$$t -max_total_time=$$each \
	        -artifact_prefix=$(B)/fuzz/ $(FUZZ_ARGS) \
	        $(B)/fuzz/corpus/$$t fuzz/corpus/$$t || exit 1; \
	done
$(B)/fuzz/fuzz_spool: fuzz/fuzz_spool.c lib/spool.c lib/buf.c lib/clock.c
