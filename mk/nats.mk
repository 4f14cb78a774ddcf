# The NATS JetStream output's test tool: tests/tools/nats_read.c reads a
# stream back (tests/integration/test_nats.py runs it from build/tests/).
$(B)/tests/nats_read: tests/tools/nats_read.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEP_CFLAGS) -o $@ $< $(LDFLAGS) $(DEP_LIBS)

all: $(B)/tests/nats_read
integration: $(B)/tests/nats_read
