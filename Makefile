# dotmesh — see README.md. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dotmesh-io/dotmesh/frontends/cli.Version=$(VERSION)
# Debian packages the tests and the bench need; installed only when missing.
TEST_PACKAGES := zfs-fuse btrfs-progs postgresql mariadb-server redis-server sqlite3 docker.io busybox-static etcd-server chromium lintian systemd binutils ca-certificates prometheus openssl
BENCH_PACKAGES := restic rsync zfs-fuse btrfs-progs etcd-server
FUZZTIME ?= 4s
# The torture run (tests/torture): `make torture` runs TORTURE_TIME per
# backend; TORTURE_SEED 0 takes one from the clock; TORTURE_EXCLUDE leaves
# operation classes out. The 60-second run inside `make test` (seed 1 unless
# TORTURE_SEED is set) leaves out TORTURE_TEST_EXCLUDE: classes with known
# open defects, e.g. "gc,reset".
TORTURE_TIME ?= 10m
TORTURE_SEED ?= 0
TORTURE_BACKENDS ?= files
TORTURE_EXCLUDE ?=
TORTURE_TEST_EXCLUDE ?=

.PHONY: all build test unit e2e fuzz vet demo bench torture man version clean

all: build

# bin/dm is the light dm (-tags dmlight: the CLI and the API client, fast
# to start); it hands the commands that run nodes, open bucket
# repositories or write man pages to bin/dm-node beside it, the all-in-one dm (see
# cmd/dm). The light dm is linked statically (no cgo): without the
# dynamic loader it starts 2-3 ms sooner.
# Each binary is then rewritten in one write(2): the linker writes its
# output through a shared mapping, which leaves the file in the page cache
# as 4 KiB pages, and every start of dm then pays for mapping its text 4 KiB
# at a time (fault-around walks 16 small folios per fault). Written in one
# call, a file system with large folios (ext4 since Linux 6.16) keeps it in
# 2 MiB ones: a light `dm commit` starts with ~0.8-1 ms less CPU (see
# README, bench). A file read back from disk by exec is in small pages again.
# The light dm is built without Go 1.26's Green Tea garbage collector
# (GOEXPERIMENT=nogreenteagc, while the toolchain still offers the opt-out):
# a dm runs for milliseconds and never collects, and Green Tea's layout,
# mark bits at the end of every small-object span, touches one more page of
# each span at its first allocation: 37 of the 281 page faults and 0.76 ms
# of the 6.8 ms of CPU of a `dm version` (README, bench). Set with = so that
# only the build asks the toolchain.
LIGHT_GOEXPERIMENT = $(shell GOEXPERIMENT=nogreenteagc $(GO) env GOEXPERIMENT >/dev/null 2>&1 && echo nogreenteagc)
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dm-node ./cmd/dm
	CGO_ENABLED=0 GOEXPERIMENT="$(LIGHT_GOEXPERIMENT)" $(GO) build -tags dmlight -ldflags "$(LDFLAGS)" -o bin/dm ./cmd/dm
	@for b in bin/dm-node bin/dm; do \
		dd if=$$b of=$$b.tmp bs=128M status=none && chmod 0755 $$b.tmp && mv -f $$b.tmp $$b || exit 1; \
	done

vet:
	$(GO) vet ./...
	$(GO) vet -tags dmlight ./cmd/dm ./frontends/cli ./client/...
	cd deploy && $(GO) vet ./...

test: build vet
	@scripts/ensure-packages.sh $(TEST_PACKAGES)
	# The bucket tests' real S3 server: SeaweedFS's weed, built once into a
	# cache outside the checkout (several CPU minutes the first time), in
	# the background while the packages before bucket/ test; the bucket
	# tests wait on the build's lock.
	@scripts/ensure-seaweedfs.sh --background
	# scripts/test-streams.sh: the tests that share the one zfs-fuse daemon
	# one binary at a time, beside the rest (then the -race, dmlight and
	# deploy/ runs). ./tests/torture runs the torture run for 60 s
	# (TORTURE_TEST_TIME) on the files backend.
	DOTMESH_WEED="$$(scripts/ensure-seaweedfs.sh --path)" TORTURE_EXCLUDE="$(TORTURE_TEST_EXCLUDE)" GO="$(GO)" scripts/test-streams.sh
	@$(MAKE) --no-print-directory fuzz

# Every parser has a fuzz target; run each briefly.
fuzz:
	@scripts/fuzz-all.sh $(FUZZTIME)

demo: build
	@scripts/demo.sh

# The s3 section runs SeaweedFS's weed, built once (minutes) into the cache.
bench: build
	@scripts/ensure-packages.sh $(BENCH_PACKAGES)
	DOTMESH_WEED="$$(scripts/ensure-seaweedfs.sh)" $(GO) run ./bench $(BENCHFLAGS)

# One instant across databases measured with a 1 GiB PostgreSQL source
# beside small MariaDB, Redis and SQLite ones (a few minutes; make test runs
# the same test with 16 MiB). It takes the heavy-tests lock: it loads the
# machine's disks.
.PHONY: instant-bench
instant-bench:
	@scripts/ensure-packages.sh $(TEST_PACKAGES)
	DM_INSTANT_PG_MB=$${DM_INSTANT_PG_MB:-1024} flock -o /tmp/dm-heavy-tests.lock $(GO) test -count=1 -timeout 30m -run 'TestOneInstant$$' -v ./backend/dump/

# Random operations, SIGKILLs and restarts on three real nodes, with
# invariant checks; exits 1 with the seed on the first violation. zfs and
# btrfs runs take the heavy-tests lock (one zfs-fuse, loop devices).
torture: build
	$(GO) build -o bin/dm-torture ./cmd/dm-torture
	@lock=; case ",$(TORTURE_BACKENDS)," in *,zfs,*|*,btrfs,*) \
		scripts/ensure-packages.sh zfs-fuse btrfs-progs; lock="flock /tmp/dm-heavy-tests.lock";; esac; \
	$$lock bin/dm-torture -dm bin/dm -time $(TORTURE_TIME) -seed $(TORTURE_SEED) \
		-backends $(TORTURE_BACKENDS) -exclude "$(TORTURE_EXCLUDE)"

# The image and the Debian package carry a static dm: cgo stays on (the
# btrfs backend needs it), netgo and osusergo keep libc's resolver and
# user lookups out, so the binary runs FROM scratch and on any Linux.
.PHONY: static image image-full deb test-image-full
static:
	$(GO) build -tags netgo,osusergo -ldflags "$(LDFLAGS) -linkmode external -extldflags -static" -o bin/static/dm ./cmd/dm

# `make image` builds $(IMAGE):$(VERSION) and $(IMAGE):latest from the
# Dockerfile, FROM scratch: no registry is needed. Its context is
# bin/image, a root file system of the static dm, CA certificates, a
# passwd and an empty /tmp (README "Operating dotmesh").
IMAGE ?= dotmesh/dm
image: static
	rm -rf bin/image
	install -d -m 0755 bin/image/usr/bin bin/image/etc/ssl/certs bin/image/var/lib/dotmesh
	install -d -m 0700 bin/image/root
	install -d -m 1777 bin/image/tmp
	install -m 0755 bin/static/dm bin/image/usr/bin/dm
	strip --strip-unneeded bin/image/usr/bin/dm
	install -m 0644 packaging/docker/passwd packaging/docker/group bin/image/etc/
	install -m 0644 /etc/ssl/certs/ca-certificates.crt bin/image/etc/ssl/certs/
	DOCKER_BUILDKIT=0 docker build -q -f Dockerfile --build-arg VERSION=$(VERSION) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest bin/image

# `make image-full` builds $(IMAGE):$(VERSION)-full and $(IMAGE):full from
# Dockerfile.full: the same dm on Debian with pg_dump, mysqldump, redis-cli
# and sqlite3. Its base is a debootstrap root file system, made once and
# cached (scripts/ensure-rootfs.sh), docker-imported as $(IMAGE)-base.
image-full: static
	docker import "$$(scripts/ensure-rootfs.sh)" $(IMAGE)-base:bookworm >/dev/null
	rm -rf bin/image-full
	install -d -m 0755 bin/image-full
	install -m 0755 bin/static/dm bin/image-full/dm
	strip --strip-unneeded bin/image-full/dm
	DOCKER_BUILDKIT=0 docker build -q -f Dockerfile.full --build-arg BASE=$(IMAGE)-base:bookworm \
		--build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION)-full -t $(IMAGE):full bin/image-full

# `make deb` builds bin/dotmesh_VERSION_ARCH.deb with dpkg-deb
# (packaging/deb/build.sh; DEB_DIR moves it; DEB_MAINTAINER, or DEBFULLNAME
# and DEBEMAIL, name the maintainer, else the commit's committer).
DEB_DIR ?= bin
deb: static
	@packaging/deb/build.sh bin/static/dm $(DEB_DIR)

# A man page per command, generated from the commands (dm docs man).
MANDIR ?= bin/man
man: build
	bin/dm docs man $(MANDIR)

# The version a build stamps into dm: the tag when HEAD is tagged.
version:
	@echo $(VERSION)

clean:
	rm -rf bin

# The fuller image's test (debootstrap once, minutes; then a second image
# build) runs on request, not in `make test`.
test-image-full: build
	@scripts/ensure-packages.sh docker.io sqlite3
	$(GO) test -count=1 -tags imagefull -run TestImageFull ./tests/e2e/
