#!/usr/bin/env bash
# Builds the real `helm` (the chart's lint and template tests,
# deploy/helm/dotmesh) from the Go module proxy once into a cache outside
# the checkout, and prints its path. Idempotent; two runs racing take
# turns on a lock beside the binary.
#
#   ensure-helm.sh          build if needed, print the path
#   ensure-helm.sh --path   print the path only
set -euo pipefail
version=${HELM_VERSION:-v3.21.4}
cache=${DOTMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dotmesh}
dir=$cache/helm-$version
bin=$dir/helm

if [ "${1:-}" = --path ]; then
	echo "$bin"
	exit 0
fi
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ ! -x "$bin" ]; then
	echo "ensure-helm: building helm $version (a few minutes, once)" >&2
	tmp=$(mktemp -d "$dir/gobin.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# Outside any module, so the repo's go.mod plays no part.
	(cd "$dir" && GOFLAGS=-buildvcs=false GOBIN="$tmp" go install "helm.sh/helm/v3/cmd/helm@$version")
	mv "$tmp/helm" "$bin"
fi
echo "$bin"
