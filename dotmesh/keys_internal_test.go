package dotmesh

import "testing"

// TestKeyBytes pins the registry's key layout: existing registries must
// open after a refactor, so a changed byte here needs a migration.
func TestKeyBytes(t *testing.T) {
	name := DotName{Namespace: "admin", Name: "app"}
	for got, want := range map[string]string{
		nameKey(name):                        "names/admin/app",
		dotKey("d1"):                         "dots/d1",
		branchKey("d1", "master"):            "branches/d1/master",
		branchPrefix("d1"):                   "branches/d1/",
		commitKey("d1", "c1"):                "commits/d1/c1",
		commitPrefix("d1"):                   "commits/d1/",
		apiKeyKey("alice"):                   "apikeys/alice",
		mountKey("d1", "", "docker", "m1"):   "mounts/d1/18188b19d683595083c218fb0cfc2f56",
		mountKey("d1", "n1", "docker", "m1"): "mounts/d1/bd35b88453afe917232b66e25335a6fb",
		mountPrefix("d1"):                    "mounts/d1/",
		incomingKey("d1", "master"):          "incoming/d1/master",
		incomingDotPrefix("d1"):              "incoming/d1/",
		stagingKey(name):                     "transfers/admin/app",
		nodeKey("n1"):                        "nodes/n1",
		replicaKey("d1", "c1", "n1"):         "replicas/d1/c1/n1",
		replicaPrefix("d1"):                  "replicas/d1/",
		replicaCommitPrefix("d1", "c1"):      "replicas/d1/c1/",
		frontendNSPrefix("csi"):              "frontend/csi/",
		userKey("alice"):                     "users/alice",
		keyKey([]byte{0xab, 0x01}):           "keys/ab01",
		grantKey("d1", "bob"):                "grants/d1/bob",
		grantPrefix("d1"):                    "grants/d1/",
		visibilityKey("d1"):                  "visibility/d1",
		auditKey("0001-ff"):                  "audit/0001-ff",
		tagKey("d1", "v1"):                   "tags/d1/v1",
		tagPrefix("d1"):                      "tags/d1/",
		dotPolicyKey("d1"):                   "policies/dots/d1",
		selectorPolicyKey("admin"):           "policies/selectors/8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918",
		scheduleKey("d1", "master"):          "schedules/d1/master",
		scheduleDotPrefix("d1"):              "schedules/d1/",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}
