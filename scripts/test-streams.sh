#!/usr/bin/env bash
# Runs the module's tests for `make test` in two streams at once, each one
# test binary at a time:
#
#   zfs   the packages whose tests use the zfs-fuse daemon (they import
#         backend/zfs/zfstest): one daemon serves every test pool, and it
#         can wedge when several test binaries mount and receive at once;
#         then the -race runs of those among the race packages;
#   rest  every other package, then the -race runs of the rest of the race
#         packages, the light dm's client and CLI tests (-tags dmlight) and
#         deploy/'s module.
#
# Most of the zfs stream waits on zfs-fuse, on nodes starting and on disks,
# so the other stream uses the CPU it leaves idle. On a two-core machine
# the two streams took 20 minutes (tests/e2e 731 s, 678 s alone), where
# the same runs one after the other took 31 minutes of tests alone, and
# `make test` 32 minutes instead of 47.
#
# Each line of output starts with its stream's name. A stream stops at its
# first failing command; the script waits for both and fails if either did.
# The environment (DOTMESH_WEED, TORTURE_EXCLUDE...) reaches every test.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
module=$($go list -m)
zfstest=$module/backend/zfs/zfstest

# The packages -race runs over (the concurrent core: engine, transports,
# registries, server, client, source readers, bucket client).
race_pkgs=$($go list ./dotmesh/... ./transport/... ./cluster/... ./server/... ./client/... ./backend/dump/source/... ./bucket/)

# One listing of every package with its tests' imports: all_pkgs, and of
# those zfs_pkgs, the packages whose tests import zfstest (or are its own).
listing=$($go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./...)
all_pkgs=$(awk '{ print $1 }' <<<"$listing")
zfs_pkgs=$(awk -v z="$zfstest" '$1 == z { print $1; next } { for (i = 2; i <= NF; i++) if ($i == z) { print $1; break } }' <<<"$listing")
if [ -z "$zfs_pkgs" ]; then
	echo "test-streams: no package's tests import $zfstest; the zfs stream would be empty" >&2
	exit 1
fi
# in_zfs, out_of_zfs: the packages on stdin in, or out of, the zfs set.
in_zfs() { grep -xF -f <(printf '%s\n' "$zfs_pkgs") || true; }
out_of_zfs() { grep -vxF -f <(printf '%s\n' "$zfs_pkgs") || true; }
rest_pkgs=$(out_of_zfs <<<"$all_pkgs")
zfs_race=$(in_zfs <<<"$race_pkgs")
rest_race=$(out_of_zfs <<<"$race_pkgs")

run() { # run CMD...: echo it, then run it
	echo "$*"
	"$@"
}

zfs_stream() {
	# shellcheck disable=SC2086 # package lists split on purpose
	run $go test -count=1 -p 1 -timeout 30m $zfs_pkgs &&
		if [ -n "$zfs_race" ]; then run $go test -count=1 -race -p 1 -timeout 30m $zfs_race; fi
}

rest_stream() {
	# shellcheck disable=SC2086
	run $go test -count=1 -p 1 -timeout 30m $rest_pkgs &&
		if [ -n "$rest_race" ]; then run $go test -count=1 -race -p 1 -timeout 30m $rest_race; fi &&
		# The light dm's client speaks HTTP/1.1 through client/internal/h1,
		# not net/http: its packages' tests again in that build. The tests
		# of parts it leaves to dm-node (text diff, neutral transfer, bucket
		# client) are in !dmlight files: that build compiles without them.
		run $go test -count=1 -tags dmlight -timeout 30m ./client/... ./frontends/cli/... &&
		# deploy/ is a module of its own (k8s.io/api stays out of the main
		# one): the Kubernetes manifests and the Helm chart, rendered by the
		# real helm (scripts/ensure-helm.sh builds it once into the cache),
		# decoded strictly.
		(cd deploy && run $go test -count=1 -timeout 30m ./...)
}

start=$SECONDS
status=$(mktemp -d)
trap 'rm -rf "$status"' EXIT
# Each stream records its exit status in a file: a pipeline's status would
# be sed's.
(
	set +e
	zfs_stream 2>&1
	echo $? >"$status/zfs"
) | sed -u 's/^/zfs  | /' &
(
	set +e
	rest_stream 2>&1
	echo $? >"$status/rest"
) | sed -u 's/^/rest | /' &
wait

failed=0
for s in zfs rest; do
	rc=$(cat "$status/$s" 2>/dev/null || echo "no status")
	if [ "$rc" != 0 ]; then
		echo "test-streams: the $s stream failed ($rc)"
		failed=1
	fi
done
echo "test-streams: both streams took $((SECONDS - start)) s"
exit $failed
