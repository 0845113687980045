#!/usr/bin/env bash
# The fuller image's base (make image-full): a Debian root file system,
# minbase plus the dump sources' client tools, made once with debootstrap
# from the Debian mirror apt uses on this machine, and cached as a tarball
# outside the checkout (minutes the first time). Idempotent; two runs
# racing take turns on a lock beside the tarball.
#
#   ensure-rootfs.sh               make it if needed, print the path
#   ensure-rootfs.sh --path        print the path only
#   ensure-rootfs.sh --background  start making it if needed and return at
#                                  once; the maker holds the lock until it
#                                  ends (log: rootfs.log beside it), and
#                                  make image-full waits on that lock
set -euo pipefail
suite=bookworm
tools=ca-certificates,postgresql-client,mariadb-client,redis-tools,sqlite3
cache=${DOTMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dotmesh}
tar=$cache/rootfs-$suite-dump-tools.tar

make_rootfs() { # with the lock held on fd 9
	if [ -s "$tar" ]; then
		return 0
	fi
	"$(dirname "$0")/ensure-packages.sh" debootstrap
	local mirror tmp
	mirror=$(sed -n 's/^URIs: *\([^ ]*debian\/\?\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 1p)
	[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*debian\/\?\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | sed -n 1p)
	if [ -z "$mirror" ]; then
		echo "ensure-rootfs: no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list: configure apt, or put a root file system tarball at $tar" >&2
		return 1
	fi
	tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "ensure-rootfs: debootstrap $suite with $tools from $mirror (minutes, once)" >&2
	if ! debootstrap --variant=minbase --include="$tools" "$suite" "$tmp/root" "$mirror" >"$tmp/log" 2>&1; then
		tail -20 "$tmp/log" >&2
		echo "ensure-rootfs: debootstrap failed (log above)" >&2
		return 1
	fi
	# Package caches and lists are not needed in an image.
	rm -rf "$tmp"/root/var/cache/apt/archives/*.deb "$tmp"/root/var/lib/apt/lists/*
	tar --numeric-owner -C "$tmp/root" -cf "$tmp/rootfs.tar" .
	mv "$tmp/rootfs.tar" "$tar"
}

case "${1:-}" in
--path)
	echo "$tar"
	exit 0
	;;
--background)
	if [ -s "$tar" ]; then
		exit 0
	fi
	mkdir -p "$cache"
	exec 9>"$cache/rootfs.lock"
	if ! flock -n 9; then
		exit 0 # being made already
	fi
	# The child inherits fd 9, and with it the lock, until it ends.
	(make_rootfs >"$cache/rootfs.log" 2>&1) &
	exit 0
	;;
esac
if [ ! -s "$tar" ]; then
	mkdir -p "$cache"
	exec 9>"$cache/rootfs.lock"
	flock 9
	make_rootfs
fi
echo "$tar"
