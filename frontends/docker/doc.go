// Package docker is dotmesh's Docker volume plugin: `docker run
// --volume-driver dm -v app.db:/data ...` mounts subdot db of dot app.
//
// Volume names use the shared syntax [namespace/]dot[@branch][.subdot]:
// "app" is subdot __default__ of the dot's current branch, "app.db" the
// subdot db, "app.__root__" the whole branch, "app@feature.db" pins a
// branch so the mount does not follow `dm checkout`.
//
// The plugin speaks Docker's small JSON-over-HTTP plugin protocol
// (/Plugin.Activate and /VolumeDriver.*) itself rather than through
// github.com/docker/go-plugins-helpers: that helper answers malformed JSON
// with a plain-text 400 instead of the protocol's {"Err": "..."} body,
// offers no graceful shutdown of its socket, and would add go-winio,
// go-systemd and go-connections (and a golang.org/x/sys bump) to the module
// for what is about two hundred lines here.
//
// Mounts are recorded in the node (consumer "docker", one per mount ID
// Docker sends), so `dm list` shows who uses a dot and `dm reset` refuses
// to change data under a running container. Controller stops and starts
// those containers through the Docker engine API when asked to
// (`dm reset --restart`). What Docker created (delete-on-remove and the
// names `docker volume ls` lists) is kept in the node's registry, namespace
// "docker" of its FrontendRecords; New imports the docker-volumes.json an
// older version kept once and renames it to docker-volumes.json.imported.
// The plugin reaches the engine only through its Node interface.
package docker
