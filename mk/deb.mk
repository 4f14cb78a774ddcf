# make deb: the Debian package, lograil_VERSION_ARCH.deb, in $(B)/deb/.
#
# dpkg-buildpackage writes its results beside the source tree, so it runs on
# a copy of the tracked (and new, not ignored) files in $(B)/deb/src/: the
# checkout's parent directory stays untouched.  Then lintian, whose tags are
# printed (each that stays is explained in debian/README.source);
# `make deb LINTIAN=no` skips it (the systemd tests do: it takes a while).
LINTIAN ?= yes

DEB_DIR := $(B)/deb
DEB_SRC := $(DEB_DIR)/src/lograil

.PHONY: deb deb-deps
deb-deps:
	@sh mk/deps.sh deb

deb: deb-deps
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	git ls-files -z -c -o --exclude-standard | grep -zv '^build/' | \
	    tar -cf - --null -T - | tar -xf - -C $(DEB_SRC)
	# Not our make's variables (B=...): the package's build is its own.
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -b -us -uc
	mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/src/*.buildinfo $(DEB_DIR)/src/*.changes $(DEB_DIR)/
	rm -rf $(DEB_DIR)/src
	@ls $(DEB_DIR)/*.deb
ifneq ($(LINTIAN),no)
	lintian -I --pedantic $(DEB_DIR)/lograil_*.deb
endif
