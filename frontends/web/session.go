package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// cookieName holds the session id; preCookie the sign-in form's token.
const (
	cookieName = "dm_session"
	preCookie  = "dm_signin"
)

// session is one signed-in browser. The id is the bearer secret and
// never leaves the cookie; csrf is the token its forms carry.
type session struct {
	id      string
	csrf    string
	p       dotmesh.Principal
	issued  bool // signed in with an issued key (not a legacy one)
	created time.Time
	used    time.Time
	flash   string
}

// sessions keeps sessions in memory: a restart of the node signs
// everyone out, which is the safe way round.
type sessions struct {
	mu        sync.Mutex
	m         map[string]*session
	idle, max time.Duration
	now       func() time.Time
}

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, idle: idle, max: max, now: now}
}

// token returns 256 random bits, base64url-encoded.
func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(p dotmesh.Principal, issued bool) *session {
	now := s.now()
	ss := &session{id: token(), csrf: token(), p: p, issued: issued, created: now, used: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	s.m[ss.id] = ss
	return ss
}

// get returns the live session of id and marks it used; expired ones
// are deleted.
func (s *sessions) get(id string) *session {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil {
		return nil
	}
	if s.expired(ss, now) {
		delete(s.m, id)
		return nil
	}
	ss.used = now
	return ss
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.used) > s.idle || now.Sub(ss.created) > s.max
}

// sweep drops expired sessions; called with mu held.
func (s *sessions) sweep(now time.Time) {
	for id, ss := range s.m {
		if s.expired(ss, now) {
			delete(s.m, id)
		}
	}
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// dropWhere ends every session whose principal matches (a revoked key,
// a removed user).
func (s *sessions) dropWhere(match func(dotmesh.Principal) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.m {
		if match(ss.p) {
			delete(s.m, id)
		}
	}
}

// validCSRF compares a form's token with the session's in constant time.
func validCSRF(ss *session, got string) bool {
	return ss != nil && got != "" && subtle.ConstantTimeCompare([]byte(ss.csrf), []byte(got)) == 1
}

// setCookie writes a cookie scoped to the UI; Secure when the request
// came over TLS. maxAge < 0 deletes it.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// throttle counts failed sign-ins per user name and per client address;
// past the limit within the window, attempts are refused unchecked.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	fails  map[string][]time.Time
}

func newThrottle(limit int, window time.Duration, now func() time.Time) *throttle {
	return &throttle{limit: limit, window: window, now: now, fails: map[string][]time.Time{}}
}

func throttleKeys(user string, r *http.Request) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return []string{"user:" + user, "addr:" + host}
}

// wait returns how long keys must wait before trying again (0: now).
func (t *throttle) wait(keys []string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		fs := t.recent(k, now)
		if len(fs) >= t.limit {
			if d := fs[0].Add(t.window).Sub(now); d > longest {
				longest = d
			}
		}
	}
	return longest
}

// recent drops failures older than the window; called with mu held.
func (t *throttle) recent(k string, now time.Time) []time.Time {
	fs := t.fails[k]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= t.window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(t.fails, k)
	} else {
		t.fails[k] = fs
	}
	return fs
}

func (t *throttle) fail(keys []string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.fails[k] = append(t.recent(k, now), now)
	}
}

func (t *throttle) succeed(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, keys[0]) // the user's count; the address keeps its own
}

// setFlash keeps a one-line message for the session's next page.
func (s *sessions) setFlash(ss *session, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.flash = msg
}

func (s *sessions) takeFlash(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := ss.flash
	ss.flash = ""
	return f
}
