#!/usr/bin/env bash
# A short walk-through on the embedded default (files backend + bbolt):
# everything lives in a temp dir, no root needed, and it cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
DM=$PWD/bin/dm
work=$(mktemp -d "${TMPDIR:-/tmp}/dotmesh-demo.XXXXXX")
export DOTMESH_CONFIG=$work/config
cleanup() {
	"$DM" cluster stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# A free TCP port on loopback.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 32607)

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() {
	local shown=(dm "${@:2}")
	printf '$'; printf ' %q' "${shown[@]}"; printf '\n'
	"$@"
}

say "Start a node in $work/data (files backend, bbolt registry)"
run "$DM" cluster init --data-dir "$work/data" --port "$port"

say "A dot with two subdots: a database directory and web uploads"
run "$DM" init shop
db=$("$DM" path shop.db)
web=$("$DM" path shop.web)
echo "alice" >"$db/customers"
echo "<h1>v1</h1>" >"$web/index.html"
run "$DM" commit --dot shop -m "first customers and page"

say "More state, one atomic commit across both subdots"
echo "bob" >>"$db/customers"
echo "<h1>v2</h1>" >"$web/index.html"
run "$DM" commit --dot shop -m "bob signs up; page v2" -d ticket=SHOP-42
run "$DM" list

say "A branch for an experiment; \$db ($db) is a stable path: it shows the checked-out branch"
run "$DM" checkout --dot shop -b experiment
echo "mallory" >>"$db/customers"
run "$DM" commit --dot shop -m "experimental data"
run "$DM" branch --dot shop
run "$DM" checkout --dot shop master
printf 'master sees: %s\n' "$(tr '\n' ' ' <"$db/customers")"
printf 'experiment has: %s\n' "$(tr '\n' ' ' <"$("$DM" path shop@experiment.db)/customers")"

say "Oops: throw away the last master commit and an uncommitted change"
echo "garbage" >"$("$DM" path shop.web)/index.html"
run "$DM" reset --dot shop --hard HEAD^
printf 'db: %s   web: %s\n' "$(tr '\n' ' ' <"$db/customers")" "$(cat "$web/index.html")"

say "History; the experiment branch is untouched"
run "$DM" log --dot shop
run "$DM" log --dot shop --branch experiment

say "Clean up"
run "$DM" dot delete -f shop
run "$DM" cluster stop
