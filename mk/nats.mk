# The NATS JetStream output's test tool: tests/tools/nats_read.c reads a
# stream back (tests/integration/test_nats.py runs it from build/tests/).
$(B)/tests/nats_read: tests/tools/nats_read.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEP_CFLAGS) -o $@ $< $(LDFLAGS) $(DEP_LIBS)

all: $(B)/tests/nats_read
integration: $(B)/tests/nats_read

# The NATS benchmark (bench/nats/run.py): 4 clients x 250,000 x 120 B into
# lograild -> a three-node JetStream cluster (R3), against a floor publisher
# of the same records; then the stream's leader, and lograild itself, each
# killed with SIGKILL mid-flood (loss and duplicates counted in every run).
# make bench-e2e runs it after its own workloads.
#
#   make bench-nats
#   make bench-nats BENCH_NATS_ARGS="--rounds 5 --msgs 100000"
#   make bench-nats BENCH_NATS_ARGS="--workloads kill-node,kill-lograild"
BENCH_NATS_ARGS ?=

.PHONY: bench-nats
bench-nats: $(B)/lograild $(B)/tests/nats_read
	/usr/bin/python3 bench/nats/run.py --lograild $(abspath $(B)/lograild) \
	    --build $(abspath $(B))/bench-nats $(BENCH_NATS_ARGS)
