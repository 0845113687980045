#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the real S3 server the bucket tests run on
# loopback) once into a cache outside the checkout, and prints its path.
# Its go.mod has replace directives, so `go install …/weed@V` is refused:
# download the module and build ./weed inside a writable copy of it.
# Idempotent; two runs racing take turns on a lock.
set -euo pipefail
version=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
cache=${DOTMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dotmesh}
dir=$cache/weed-$version
bin=$dir/weed
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
echo "ensure-seaweedfs: building weed $version (a few minutes, once)" >&2
moddir=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$moddir" ] || [ ! -d "$moddir/weed" ]; then
	echo "ensure-seaweedfs: go mod download of github.com/seaweedfs/seaweedfs@$version gave no module directory" >&2
	exit 1
fi
src=$(mktemp -d "$dir/src.XXXXXX")
trap 'chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"' EXIT
cp -r "$moddir/." "$src/"
chmod -R u+w "$src"
(cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin.tmp" ./weed)
mv "$bin.tmp" "$bin"
echo "$bin"
