# The dotmesh image: a static dm FROM scratch, so it builds with no
# registry. Build it with `make image`, which builds the static binary
# (bin/static/dm) and this file's context, bin/image: a root file system
# holding /usr/bin/dm, CA certificates (for TLS remotes and S3 buckets), a
# passwd and an empty /tmp. By hand:
#   make image IMAGE=dotmesh/dm
#   docker build -f Dockerfile --build-arg VERSION=$(make -s version) -t dotmesh/dm bin/image
# It holds no pg_dump, mysqldump, redis-cli, sqlite3, zfs or btrfs tools:
# it runs the files backend with directory subdots (README "Operating
# dotmesh").
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="dotmesh" \
      org.opencontainers.image.description="dm: git-like commits, branches, push and pull for application state" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.source="https://github.com/dotmesh-io/dotmesh" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY . /
ENV HOME=/root
VOLUME /var/lib/dotmesh
EXPOSE 32607
ENTRYPOINT ["/usr/bin/dm"]
# The API listens on the container's loopback only: reach it with
# --network host, or give --listen 0.0.0.0:32607 with --tls-cert/--tls-key
# (or --insecure). No Docker plugin inside a container.
CMD ["serve", "--data-dir", "/var/lib/dotmesh", "--docker-socket="]
