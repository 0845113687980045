package dotmesh

import (
	"crypto/sha256"
	"encoding/hex"
)

// Key layout of the Node's ClusterStore: every key the engine writes is
// built here, so the whole layout reads in one place. The bytes are the
// on-disk format of existing registries; changing one needs a migration.
// One key per dot, branch, commit, replica and mount, so no value grows
// with the history.
//
//	names/<namespace>/<name>          -> dot id
//	dots/<dotid>                      -> Dot
//	branches/<dotid>/<branch>         -> Branch
//	commits/<dotid>/<commitid>        -> Commit
//	tags/<dotid>/<tag>                -> Tag
//	hooks/<dotid>                     -> hooksRecord (hooks.go)
//	apikeys/<user>                    -> APIKey (a legacy key: the admin's)
//	users/<user>                      -> User
//	keys/<hex sha256 of secret>       -> keyRecord (an issued API key)
//	grants/<dotid>/<user>             -> Grant
//	visibility/<dotid>                -> visibilityRecord; absent: private
//	audit/<id>                        -> AuditRecord; ids sort by time
//	mounts/<dotid>/<hash>             -> Mount (hash of node, consumer, id)
//	incoming/<dotid>/<branch>         -> incoming transfer record (incoming.go)
//	transfers/<namespace>/<name>      -> Dot staged by a receive (transfer_recv.go)
//	nodes/<node>                      -> NodeInfo, under the node's lease (cluster)
//	replicas/<dotid>/<commit>/<node>  -> "": node holds the commit's data (cluster)
//	frontend/<ns>/<key>               -> a frontend's own records (FrontendRecords)
//	policies/dots/<dotid>             -> Policy of one dot (policy.go)
//	policies/selectors/<hex sha256>   -> Policy of a selector (hash of its text)
//	schedules/<dotid>/<branch>        -> ScheduleState: a branch's last scheduled run
const (
	namesPrefix      = "names/"
	dotsPrefix       = "dots/"
	branchesPrefix   = "branches/"
	commitsPrefix    = "commits/"
	apiKeysPrefix    = "apikeys/"
	mountsPrefix     = "mounts/"
	incomingPrefix   = "incoming/"
	transfersPrefix  = "transfers/"
	nodesPrefix      = "nodes/"
	replicasPrefix   = "replicas/"
	frontendPrefix   = "frontend/"
	usersPrefix      = "users/"
	keysPrefix       = "keys/"
	grantsPrefix     = "grants/"
	visibilityPrefix = "visibility/"
	auditPrefix      = "audit/"
	tagsPrefix       = "tags/"
	policiesPrefix   = "policies/"
	schedulesPrefix  = "schedules/"
	hooksPrefix      = "hooks/"
)

// enginePrefixes are the top-level segments above, without the slash: a
// frontend namespace must not be one (its legacy keys sat at top level).
var enginePrefixes = []string{namesPrefix, dotsPrefix, branchesPrefix, commitsPrefix, apiKeysPrefix,
	mountsPrefix, incomingPrefix, transfersPrefix, nodesPrefix, replicasPrefix, frontendPrefix,
	usersPrefix, keysPrefix, grantsPrefix, visibilityPrefix, auditPrefix, tagsPrefix,
	policiesPrefix, schedulesPrefix, hooksPrefix}

func nameKey(n DotName) string            { return namesPrefix + n.Namespace + "/" + n.Name }
func dotKey(id DotID) string              { return dotsPrefix + string(id) }
func branchKey(id DotID, b string) string { return branchesPrefix + string(id) + "/" + b }
func branchPrefix(id DotID) string        { return branchesPrefix + string(id) + "/" }
func commitKey(id DotID, c CommitID) string {
	return commitsPrefix + string(id) + "/" + string(c)
}
func commitPrefix(id DotID) string { return commitsPrefix + string(id) + "/" }
func apiKeyKey(user string) string { return apiKeysPrefix + user }

func tagKey(id DotID, tag string) string { return tagsPrefix + string(id) + "/" + tag }
func tagPrefix(id DotID) string          { return tagsPrefix + string(id) + "/" }
func hooksKey(id DotID) string           { return hooksPrefix + string(id) }

func userKey(user string) string            { return usersPrefix + user }
func keyKey(hash []byte) string             { return keysPrefix + hexHash(hash) }
func grantKey(id DotID, user string) string { return grantsPrefix + string(id) + "/" + user }
func grantPrefix(id DotID) string           { return grantsPrefix + string(id) + "/" }
func visibilityKey(id DotID) string         { return visibilityPrefix + string(id) }
func auditKey(id string) string             { return auditPrefix + id }

func mountKey(dot DotID, node, consumer, id string) string {
	// IDs can be paths; hashing keeps the key one clean segment. Kubelet
	// paths repeat across nodes, so a cluster node's mounts include its id.
	seed := consumer + "\x00" + id
	if node != "" {
		seed = node + "\x00" + seed
	}
	h := sha256.Sum256([]byte(seed))
	return mountsPrefix + string(dot) + "/" + hex.EncodeToString(h[:16])
}
func mountPrefix(dot DotID) string { return mountsPrefix + string(dot) + "/" }

func incomingKey(id DotID, branch string) string {
	return incomingPrefix + string(id) + "/" + branch
}
func incomingDotPrefix(id DotID) string { return incomingPrefix + string(id) + "/" }

func stagingKey(n DotName) string { return transfersPrefix + n.Namespace + "/" + n.Name }

func nodeKey(id string) string { return nodesPrefix + id }
func replicaKey(d DotID, c CommitID, node string) string {
	return replicasPrefix + string(d) + "/" + string(c) + "/" + node
}
func replicaPrefix(d DotID) string { return replicasPrefix + string(d) + "/" }

// replicaCommitPrefix lists the holders of one commit.
func replicaCommitPrefix(d DotID, c CommitID) string { return replicaPrefix(d) + string(c) + "/" }

func frontendNSPrefix(ns string) string { return frontendPrefix + ns + "/" }

func dotPolicyKey(id DotID) string { return policiesPrefix + "dots/" + string(id) }
func selectorPolicyKey(canonical string) string {
	h := sha256.Sum256([]byte(canonical))
	return policiesPrefix + "selectors/" + hex.EncodeToString(h[:])
}
func scheduleKey(id DotID, branch string) string {
	return schedulesPrefix + string(id) + "/" + branch
}
func scheduleDotPrefix(id DotID) string { return schedulesPrefix + string(id) + "/" }
