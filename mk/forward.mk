# The forwarding benchmark (bench/forward/run.py): Unix stream clients ->
# daemon -> a no-parse TCP sink on 127.0.0.1, lograild (tcp, relp) against
# rsyslog (omfwd, omrelp) and a floor relay.  Needs rsyslog (mk/deps.sh).
#
#   make bench-forward                      # 3 rounds, both workloads
#   make bench-forward BENCH_FORWARD_ARGS="--rounds 5 --msgs 100000"
BENCH_FORWARD_ARGS ?=

.PHONY: bench-forward
bench-forward: $(B)/lograild
	/usr/bin/python3 bench/forward/run.py --lograild $(abspath $(B)/lograild) \
	    --build $(abspath $(B))/bench-forward $(BENCH_FORWARD_ARGS)
