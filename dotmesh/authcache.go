package dotmesh

import "sync"

// A request's authentication reads two or three registry records (the
// issued key by hash, else the user's legacy key, and the user's admin
// flag). Over a store that counts its writes by key prefix
// (WriteStamper: bbolt, whose file only its process writes) the node
// remembers the principal of a key that authenticated, stamped with the
// count of writes of those records read before them, and answers the next
// request with it while the count is the same. Every write of a key,
// legacy key or user record, by whatever writer of the store, changes
// the count before it returns: a revoked key, a removed user or a
// changed admin flag takes effect at once, as without the cache.

// WriteStamper is implemented by a ClusterStore that counts the writes it
// committed under each key prefix ending in its first "/"; a write is
// counted before its call returns, and every write of the store is.
type WriteStamper interface {
	WriteStamp(prefixes ...string) uint64
}

// authPrefixes hold the records authenticate reads.
var authPrefixes = []string{keysPrefix, apiKeysPrefix, usersPrefix}

// maxAuthEntries bounds the remembered keys; past it they are forgotten.
const maxAuthEntries = 1024

type authCache struct {
	st WriteStamper // nil: nothing is remembered
	mu sync.Mutex
	m  map[string]authEntry // by user (may be empty) and key hash
}

type authEntry struct {
	p     Principal
	stamp uint64
}

func authCacheKey(user string, hash []byte) string { return user + "\x00" + string(hash) }

// get returns the remembered principal of the key while no record it
// was read from changed, and the write count now: the stamp to read the
// records under when it has none.
func (a *authCache) get(user string, hash []byte) (Principal, uint64, bool) {
	if a.st == nil {
		return Principal{}, 0, false
	}
	now := a.st.WriteStamp(authPrefixes...)
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.m[authCacheKey(user, hash)]
	if !ok || e.stamp != now {
		return Principal{}, now, false
	}
	return e.p, now, true
}

// put remembers p, read after stamp was taken.
func (a *authCache) put(user string, hash []byte, stamp uint64, p Principal) {
	if a.st == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil || len(a.m) >= maxAuthEntries {
		a.m = make(map[string]authEntry)
	}
	a.m[authCacheKey(user, hash)] = authEntry{p: p, stamp: stamp}
}
