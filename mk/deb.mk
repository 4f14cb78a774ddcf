# make deb: the Debian package, lograil_VERSION_ARCH.deb, in $(B)/deb/.
#
# dpkg-buildpackage writes its results beside the source tree, so it runs on
# a copy of the tracked (and new, not ignored) files in $(B)/deb/src/: the
# checkout's parent directory stays untouched.  Then lintian, whose tags are
# printed (and explained in debian/README.source when they stay).

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
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc
	mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/src/*.buildinfo $(DEB_DIR)/src/*.changes $(DEB_DIR)/
	rm -rf $(DEB_DIR)/src
	@ls $(DEB_DIR)/*.deb
	lintian --info $(DEB_DIR)/*.changes || true
