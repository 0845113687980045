#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the real S3 server the bucket tests run on
# loopback) once into a cache outside the checkout, and prints its path.
# Its go.mod has replace directives, so `go install …/weed@V` is refused:
# download the module and build ./weed inside a writable copy of it.
# Idempotent; two runs racing take turns on a lock beside the binary.
#
#   ensure-seaweedfs.sh               build if needed, print the path
#   ensure-seaweedfs.sh --path        print the path only
#   ensure-seaweedfs.sh --background  start a build if needed and return at
#                                     once; the build holds the lock until
#                                     it ends (log: build.log beside it),
#                                     and the tests wait on that lock
set -euo pipefail
version=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
cache=${DOTMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dotmesh}
dir=$cache/weed-$version
bin=$dir/weed
# The build's copy of the module source; global, not local to build(), so
# the EXIT trap that removes it can still name it when the script ends.
src=

build() { # with the lock held on fd 9
	if [ -x "$bin" ]; then
		return 0
	fi
	echo "ensure-seaweedfs: building weed $version (a few minutes, once)" >&2
	local moddir
	moddir=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
	if [ -z "$moddir" ] || [ ! -d "$moddir/weed" ]; then
		echo "ensure-seaweedfs: go mod download of github.com/seaweedfs/seaweedfs@$version gave no module directory" >&2
		return 1
	fi
	src=$(mktemp -d "$dir/src.XXXXXX")
	trap '[ -z "$src" ] || { chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"; }' EXIT
	cp -r "$moddir/." "$src/"
	chmod -R u+w "$src"
	(cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin.tmp" ./weed)
	mv "$bin.tmp" "$bin"
}

case "${1:-}" in
--path)
	echo "$bin"
	exit 0
	;;
--background)
	if [ -x "$bin" ]; then
		exit 0
	fi
	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	if ! flock -n 9; then
		exit 0 # a build is running already
	fi
	# The child inherits fd 9, and with it the lock, until the build ends.
	(build >"$dir/build.log" 2>&1) &
	exit 0
	;;
esac
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
build
echo "$bin"
