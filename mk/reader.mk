# lograil, the reader (issue 18): cli/lograil.c linked with the libraries
# (the daemon's for its configuration loader, so that the outputs of
# lograild.conf are found exactly as the daemon finds them).
all: $(B)/lograil

$(B)/lograil: $(B)/obj/cli/lograil.o $(B)/libdaemon.a $(B)/liblograil.a
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lm

integration: $(B)/lograil

-include $(B)/obj/cli/lograil.d

.PHONY: install-reader
install: install-reader
install-reader: $(B)/lograil
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(B)/lograil $(DESTDIR)$(BINDIR)/lograil
	install -m 0644 man/lograil.1 $(DESTDIR)$(MANDIR)/man1/lograil.1
bench: $(B)/lograil
