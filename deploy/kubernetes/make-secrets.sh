#!/usr/bin/env bash
# Makes the three Secrets the cluster-mode deployment needs, with openssl:
#
#   dotmesh-admin-key   admin-api-key: the cluster's admin API key (every
#                       node serves and calls the others with it)
#   dotmesh-node-tls    ca.crt, tls.crt, tls.key: the nodes' HTTPS
#                       certificate, naming every host a node advertises
#   dotmesh-etcd-tls    ca.crt, tls.crt, tls.key (etcd's server and peer
#                       certificate), client.crt, client.key (the nodes')
#
#   make-secrets.sh [--apply] [--namespace NS] [--etcd-service NAME] DIR HOST...
#
# HOST is each name or IP address the nodes advertise (--advertise, by
# default the Kubernetes node name), or a wildcard such as *.internal.
# The files go to DIR (mode 0600; keep ca.key to add nodes later); the
# kubectl commands that make the Secrets are printed, and run with
# --apply. NS (default dotmesh) and NAME (default dotmesh-etcd: the Helm
# release's name plus -etcd) make the names etcd's certificate holds.
# Certificates last ten years; the CA signs both sets.
set -euo pipefail
apply=false ns=dotmesh svc=dotmesh-etcd
while [ $# -gt 0 ]; do
	case "$1" in
	--apply) apply=true; shift ;;
	--namespace) ns=$2; shift 2 ;;
	--etcd-service) svc=$2; shift 2 ;;
	-*) echo "make-secrets.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -lt 2 ]; then
	echo "usage: make-secrets.sh [--apply] [--namespace NS] [--etcd-service NAME] DIR HOST... (the hosts the nodes advertise)" >&2
	exit 2
fi
dir=$1; shift
umask 077
mkdir -p "$dir"
cd "$dir"

san() { # HOST... -> subjectAltName value
	local out= h
	for h in "$@"; do
		if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then out+=",IP:$h"; else out+=",DNS:$h"; fi
	done
	echo "${out#,}"
}
cert() { # NAME CN EKU SAN
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
		-keyout "$1.key" -out "$1.csr" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
		"$3" "${4:+subjectAltName=$4}" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
		-extfile "$1.ext" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}

if [ ! -f ca.crt ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=dotmesh CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout ca.key -out ca.crt 2>/dev/null
fi
cert node dotmesh-node serverAuth,clientAuth "$(san "$@")"
etcd_hosts=(localhost 127.0.0.1 "$svc.$ns.svc" "*.$svc.$ns.svc" "$svc.$ns.svc.cluster.local" "*.$svc.$ns.svc.cluster.local")
cert etcd dotmesh-etcd serverAuth,clientAuth "$(san "${etcd_hosts[@]}")"
cert etcd-client dotmesh-node clientAuth ""
[ -f admin-api-key ] || openssl rand -hex 32 >admin-api-key

cmds=(
	"kubectl -n $ns create secret generic dotmesh-admin-key --from-file=admin-api-key=$PWD/admin-api-key"
	"kubectl -n $ns create secret generic dotmesh-node-tls --from-file=ca.crt=$PWD/ca.crt --from-file=tls.crt=$PWD/node.crt --from-file=tls.key=$PWD/node.key"
	"kubectl -n $ns create secret generic dotmesh-etcd-tls --from-file=ca.crt=$PWD/ca.crt --from-file=tls.crt=$PWD/etcd.crt --from-file=tls.key=$PWD/etcd.key --from-file=client.crt=$PWD/etcd-client.crt --from-file=client.key=$PWD/etcd-client.key"
)
for c in "${cmds[@]}"; do
	echo "$c"
	if $apply; then $c; fi
done
