# dotmesh — see README.md. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dotmesh-io/dotmesh/frontends/cli.Version=$(VERSION)
# Debian packages the tests and the bench need; installed only when missing.
TEST_PACKAGES := zfs-fuse btrfs-progs postgresql mariadb-server redis-server sqlite3 docker.io busybox-static etcd-server chromium
BENCH_PACKAGES := restic rsync zfs-fuse btrfs-progs etcd-server
FUZZTIME ?= 6s
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

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dm ./cmd/dm

vet:
	$(GO) vet ./...

test: build vet
	@scripts/ensure-packages.sh $(TEST_PACKAGES)
	# The bucket tests' real S3 server: SeaweedFS's weed, built once into a
	# cache outside the checkout (several CPU minutes the first time), in
	# the background while the packages before bucket/ test; the bucket
	# tests wait on the build's lock.
	@scripts/ensure-seaweedfs.sh --background
	# -p 1: one zfs-fuse daemon serves every test pool, and it can wedge when
	# several test binaries mount and receive at once. ./tests/torture runs
	# the torture run for 60 s (TORTURE_TEST_TIME) on the files backend.
	DOTMESH_WEED="$$(scripts/ensure-seaweedfs.sh --path)" TORTURE_EXCLUDE="$(TORTURE_TEST_EXCLUDE)" $(GO) test -count=1 -p 1 -timeout 30m ./...
	$(GO) test -count=1 -race -timeout 30m ./dotmesh/... ./transport/... ./cluster/... ./server/... ./client/... ./backend/dump/source/... ./bucket/
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

# Random operations, SIGKILLs and restarts on three real nodes, with
# invariant checks; exits 1 with the seed on the first violation. zfs and
# btrfs runs take the heavy-tests lock (one zfs-fuse, loop devices).
torture: build
	$(GO) build -o bin/dm-torture ./cmd/dm-torture
	@lock=; case ",$(TORTURE_BACKENDS)," in *,zfs,*|*,btrfs,*) \
		scripts/ensure-packages.sh zfs-fuse btrfs-progs; lock="flock /tmp/dm-heavy-tests.lock";; esac; \
	$$lock bin/dm-torture -dm bin/dm -time $(TORTURE_TIME) -seed $(TORTURE_SEED) \
		-backends $(TORTURE_BACKENDS) -exclude "$(TORTURE_EXCLUDE)"

# A man page per command, generated from the commands (dm docs man).
MANDIR ?= bin/man
man: build
	bin/dm docs man $(MANDIR)

# The version a build stamps into dm: the tag when HEAD is tagged.
version:
	@echo $(VERSION)

clean:
	rm -rf bin
