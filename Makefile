# dotmesh — see README.md. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dotmesh-io/dotmesh/frontends/cli.Version=$(VERSION)
# Debian packages the tests and the bench need; installed only when missing.
TEST_PACKAGES := zfs-fuse btrfs-progs postgresql mariadb-server redis-server sqlite3 docker.io busybox-static etcd-server
BENCH_PACKAGES := restic rsync zfs-fuse btrfs-progs etcd-server
FUZZTIME ?= 10s

.PHONY: all build test unit e2e fuzz vet demo bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dm ./cmd/dm

vet:
	$(GO) vet ./...

test: build vet
	@scripts/ensure-packages.sh $(TEST_PACKAGES)
	# -p 1: one zfs-fuse daemon serves every test pool, and it can wedge when
	# several test binaries mount and receive at once.
	$(GO) test -count=1 -p 1 -timeout 30m ./...
	$(GO) test -count=1 -race -timeout 30m ./dotmesh/... ./cluster/... ./server/... ./client/... ./backend/dump/source/...
	@$(MAKE) --no-print-directory fuzz

# Every parser has a fuzz target; run each briefly.
fuzz:
	@scripts/fuzz-all.sh $(FUZZTIME)

demo: build
	@scripts/demo.sh

bench: build
	@scripts/ensure-packages.sh $(BENCH_PACKAGES)
	$(GO) run ./bench $(BENCHFLAGS)

clean:
	rm -rf bin
