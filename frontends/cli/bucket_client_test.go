//go:build !dmlight

// The light build (dmlight) leaves the bucket client to dm-node: this file's
// tests build only in the full one.

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestBucketRemoteAdd(t *testing.T) {
	e, cfgPath := testEnv(t)
	dir := filepath.Join(t.TempDir(), "usb")
	url := "file://" + dir

	// No password, no terminal: the three ways, and nothing saved.
	r := runDM(t, e, "remote", "add", "b", url)
	failsWithCode(t, r, "give --password-file FILE, set DOTMESH_REMOTE_PASSWORD, or run dm on a terminal", exitInvalid)
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Fatalf("a refused remote add wrote a config: %v", err)
	}

	pw := withEnv(e, passwordEnv, "pw-one")
	out := runDM(t, pw, "remote", "add", "b", url)
	if out.code != 0 || !strings.Contains(out.out, "made an encrypted repository") {
		t.Fatalf("dm remote add b %s: %+v", url, out)
	}
	if c := readFile(t, cfgPath); strings.Contains(c, "pw-one") || !strings.Contains(c, `"url": "`+url+`"`) || strings.Contains(c, `"current_remote"`) {
		t.Fatalf("the config holds the password, lacks the URL or made a bucket current:\n%s", c)
	}
	failsWithCode(t, runDM(t, pw, "remote", "add", "b", url), "remote b exists already", exitConflict)
	mustRun(t, pw, "remote", "rm", "b")

	// Re-added: opened with the password, which must be right.
	if r := runDM(t, pw, "remote", "add", "b", url); r.code != 0 || !strings.Contains(r.out, "opens with the password") {
		t.Fatalf("re-adding with the right password: %+v", r)
	}
	mustRun(t, pw, "remote", "rm", "b")
	failsWithCode(t, runDM(t, withEnv(e, passwordEnv, "wrong"), "remote", "add", "b", url), "wrong password", exitUnauthorized)
	if strings.Contains(readFile(t, cfgPath), url) {
		t.Fatal("a remote add with a wrong password saved the remote")
	}

	// --password-file: saved as an absolute path, never the password.
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pw-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(pwFile))
	mustRun(t, e, "remote", "add", "b", url, "--password-file", "pw")
	if c := readFile(t, cfgPath); !strings.Contains(c, `"password_file": "`+pwFile+`"`) || strings.Contains(c, "pw-one") {
		t.Fatalf("config after --password-file:\n%s", c)
	}
	// The saved file opens it from now on.
	if got := mustRun(t, e, "remote", "key", "list", "b", "-H"); !regexp.MustCompile(`^[0-9a-f]{32}\t\S+\targon2id\tyes\n$`).MatchString(got) {
		t.Fatalf("dm remote key list -H: %q", got)
	}

	// -v shows the URL; a bucket is never the remote dm talks to.
	if got := mustRun(t, e, "remote", "-v"); !strings.Contains(got, "b  "+url) {
		t.Fatalf("dm remote -v:\n%s", got)
	}
	failsWithCode(t, runDM(t, e, "remote", "switch", "b"), "remote b is a bucket, not a node", exitNotSupported)
	failsWithCode(t, runDM(t, e, "--remote", "b", "commit", "-m", "x"), "remote b is a bucket, not a node", exitNotSupported)

	// --no-encryption: refused on an encrypted repository, else plain.
	failsWithCode(t, runDM(t, e, "remote", "add", "c", url, "--no-encryption"), "holds an encrypted repository; add it without --no-encryption", exitInvalid)
	plain := "file://" + filepath.Join(t.TempDir(), "plain")
	if r := runDM(t, e, "remote", "add", "p", plain, "--no-encryption"); r.code != 0 || !strings.Contains(r.out, "without encryption") {
		t.Fatalf("dm remote add --no-encryption: %+v", r)
	}
	mustRun(t, e, "remote", "rm", "p")
	// Re-added without the flag, a plain repository needs no password.
	if r := runDM(t, e, "remote", "add", "p", plain); r.code != 0 || !strings.Contains(r.out, "not encrypted") {
		t.Fatalf("re-adding a plain repository: %+v", r)
	}
	if !strings.Contains(readFile(t, cfgPath), `"no_encryption": true`) {
		t.Fatal("a plain repository's remote is not marked no_encryption")
	}
	failsWithCode(t, runDM(t, e, "remote", "key", "add", "p"), "not encrypted", exitNotSupported)
}

func TestBucketBadInput(t *testing.T) {
	e, cfg := testEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"remote", "add", "b", "s3://"}, "no bucket: give s3://BUCKET[/PREFIX]"},
		{[]string{"remote", "add", "b", "file://rel/dir"}, "file:///DIR"},
		{[]string{"remote", "add", "b", "s3://x", "--insecure"}, "for node remotes"},
		{[]string{"remote", "add", "b", "admin@127.0.0.1", "--endpoint", "http://x"}, "are for bucket remotes"},
		{[]string{"remote", "key", "remove", "b", "not-hex"}, "is not a key id"},
		{[]string{"remote", "key", "list", "b"}, "no remote named b"},
		{[]string{"remote", "unlock", "bad name"}, "remote name"},
		{[]string{"verify", "--read-data=50"}, "--read-data is for bucket remotes"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			failsWith(t, runDM(t, e, c.args...), c.want)
		})
	}
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("bad input wrote a config: %v", err)
	}
}

// TestBucketErrorWords: each kind of bucket failure is one line naming the
// remote and what to do, with its own exit status.
func TestBucketErrorWords(t *testing.T) {
	b := &BucketRemote{URL: "s3://bk/p", Endpoint: "http://127.0.0.1:8333"}
	st := func(sentinel error, what string) error {
		return &bucket.Error{Op: "put", Name: "data/ab/cd", Location: "s3://bk/p at http://127.0.0.1:8333", Err: fmt.Errorf("%w: %s", sentinel, what)}
	}
	for _, c := range []struct {
		err  error
		want string
		code int
	}{
		{repo.ErrWrongPassword, "bucket remote b: unauthorized: wrong password: no key of the repository opens with it; give the repository's password with --password-file FILE, $DOTMESH_REMOTE_PASSWORD or at the prompt on a terminal", exitUnauthorized},
		{&repo.LockedError{Holder: "exclusive lock held by bob (pid 7 on h, refreshed 2026-12-05T01:00:00Z)", Object: "locks/ab"}, "exclusive lock held by bob (pid 7 on h, refreshed 2026-12-05T01:00:00Z) (object locks/ab); try again later, or remove it if its holder is gone; try again when it is done; if its holder is gone, `dm remote unlock b` removes stale locks", exitConflict},
		{&repo.CorruptError{Name: "data/ab/cd", Err: errors.New("seal does not open")}, "object data/ab/cd: seal does not open; nothing damaged was used as data; `dm verify b --read-data` lists what is damaged", exitCorrupt},
		{st(dotmesh.ErrPermissionDenied, "AccessDenied"), "AccessDenied; the S3 credentials lack that permission", exitPermission},
		{st(dotmesh.ErrUnavailable, "connection refused"), "connection refused; check that the S3 server at http://127.0.0.1:8333 runs, then try again", exitUnavailable},
		{&repo.KeyInUseError{ID: "ab12"}, "key ab12 is the one this repository was opened with; pass --force to remove it anyway", exitConflict},
		{missingRepository(fmt.Errorf("%w: s3://bk/p holds no repository (no config object)", dotmesh.ErrNotFound), "b", b), "holds no repository (no config object); check the URL (s3://bk/p) and its endpoint", exitNotFound},
	} {
		var buf strings.Builder
		code := reportError(&buf, bucketError(c.err, "b", b), false)
		if code != c.code || !strings.Contains(buf.String(), c.want) || !strings.HasPrefix(buf.String(), "dm: bucket remote b: ") || strings.Count(buf.String(), "\n") != 1 {
			t.Errorf("%v:\nprinted %q, exit %d;\nwant it to contain %q, exit %d", c.err, buf.String(), code, c.want, c.code)
		}
	}
	if err := bucketError(errDamage, "b", b); err != errDamage {
		t.Errorf("verify's finding was reworded: %v", err)
	}
}

// TestBucketKeysUnlockAndErrors drives `dm remote key` and `unlock`, and
// the errors of a real repository: missing, locked.
func TestBucketKeysUnlockAndErrors(t *testing.T) {
	e, cfgPath := testEnv(t)
	dir := t.TempDir()
	pw := withEnv(e, passwordEnv, "pw-one")
	mustRun(t, pw, "remote", "add", "b", "file://"+dir)

	newPW := filepath.Join(t.TempDir(), "new")
	if err := os.WriteFile(newPW, []byte("pw-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(mustRun(t, pw, "remote", "key", "add", "b", "--new-password-file", newPW, "-H"))
	keys := mustRun(t, withEnv(e, passwordEnv, "pw-two"), "remote", "key", "list", "b")
	if !strings.Contains(keys, "* "+id) || strings.Count(keys, "argon2id") != 2 {
		t.Fatalf("dm remote key list with the new password:\n%s", keys)
	}
	inUse := ""
	for _, l := range strings.Split(mustRun(t, pw, "remote", "key", "list", "b", "-H"), "\n") {
		if strings.HasSuffix(l, "\tyes") {
			inUse = strings.Fields(l)[0]
		}
	}
	failsWithCode(t, runDM(t, pw, "remote", "key", "remove", "b", inUse), "is the one this repository was opened with; pass --force", exitConflict)
	mustRun(t, pw, "remote", "key", "remove", "b", id)
	failsWithCode(t, runDM(t, withEnv(e, passwordEnv, "pw-two"), "remote", "key", "list", "b"), "wrong password", exitUnauthorized)
	failsWithCode(t, runDM(t, pw, "remote", "key", "remove", "b", inUse), "only key", exitConflict)
	failsWithCode(t, runDM(t, pw, "remote", "key", "remove", "b", strings.Repeat("0", 32)), "has no key", exitNotFound)

	if r := runDM(t, pw, "remote", "unlock", "b"); r.code != 0 || !strings.Contains(r.out, "Removed 0 stale locks") {
		t.Fatalf("dm remote unlock: %+v", r)
	}

	// A store that holds no repository (emptied, or the wrong prefix).
	empty := t.TempDir()
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Remotes["gone"] = &Remote{Bucket: &BucketRemote{URL: "file://" + empty}}
	writeConfig(t, cfgPath, cfg)
	failsWithCode(t, runDM(t, pw, "remote", "unlock", "gone"), "holds no repository", exitNotFound)
}

// TestBucketPushCloneThroughNode: push, clone and pull with a file://
// bucket run on the node, which gets the password from dm; errors name
// the bucket remote.
func TestBucketPushCloneThroughNode(t *testing.T) {
	e, _ := withNode(t)
	dir := t.TempDir()
	pw := withEnv(e, passwordEnv, "pw-one")
	mustRun(t, pw, "remote", "add", "b", "file://"+dir)
	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app"))
	data := strings.Repeat("dotmesh bucket remote\n", 5000)
	if err := os.WriteFile(filepath.Join(p, "f.txt"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "commit", "--dot", "app", "-m", "first")

	failsWithCode(t, runDM(t, e, "push", "b", "app"), "no password for bucket remote b", exitInvalid)
	failsWithCode(t, runDM(t, withEnv(e, passwordEnv, "nope"), "push", "b", "app"), "bucket remote b: ", exitUnauthorized)
	if got := mustRun(t, pw, "push", "b", "app"); !strings.Contains(got, "Pushed to b's app@master") || !strings.Contains(got, "1 commit(s)") {
		t.Fatalf("dm push b app: %q", got)
	}
	if got := mustRun(t, pw, "push", "b", "app"); !strings.Contains(got, "up to date") {
		t.Fatalf("a second push: %q", got)
	}
	mustRun(t, pw, "clone", "b", "app", "--local-name", "copy")
	cp := strings.TrimSpace(mustRun(t, e, "path", "copy"))
	if got := readFile(t, filepath.Join(cp, "f.txt")); got != data {
		t.Fatalf("the clone's file differs: %d bytes, want %d", len(got), len(data))
	}

	// An incremental push, then a pull into the clone.
	if err := os.WriteFile(filepath.Join(p, "g.txt"), []byte("more"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "commit", "--dot", "app", "-m", "second")
	if got := mustRun(t, pw, "push", "b", "app", "--json"); !strings.Contains(got, `"commits": 1`) {
		t.Fatalf("the incremental push: %s", got)
	}
	mustRun(t, pw, "pull", "b", "copy", "--remote-name", "app")
	if got := readFile(t, filepath.Join(cp, "g.txt")); got != "more" {
		t.Fatalf("the pull brought %q", got)
	}

	// A lock held elsewhere (a gc) stops a push, naming it and the way out.
	st, err := bucket.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := repo.Open(context.Background(), st, []byte("pw-one"), repo.Options{Host: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := rp.Lock(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "h.txt"), []byte("third"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "commit", "--dot", "app", "-m", "third")
	r := runDM(t, pw, "push", "b", "app")
	failsWithCode(t, r, "on elsewhere", exitConflict)
	failsWith(t, r, "`dm remote unlock b` removes stale locks")
	if err := lk.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustRun(t, pw, "push", "b", "app")
}

// TestBucketListLogGCVerify: what a file:// bucket holds, read by dm
// itself: list and log agree with the node, gc --keep removes the older
// commit, verify names a damaged object and exits 8.
func TestBucketListLogGCVerify(t *testing.T) {
	e, _ := withNode(t)
	dir := t.TempDir()
	pw := withEnv(e, passwordEnv, "pw-one")
	mustRun(t, pw, "remote", "add", "b", "file://"+dir)
	if r := runDM(t, pw, "list", "b"); r.code != 0 || !strings.Contains(r.out, "holds no dots yet") {
		t.Fatalf("dm list of an empty bucket: %+v", r)
	}
	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app"))
	for i, msg := range []string{"first", "second"} {
		if err := os.WriteFile(filepath.Join(p, fmt.Sprintf("f%d.txt", i)), []byte(strings.Repeat(msg, 1000)), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, e, "commit", "--dot", "app", "-m", msg)
	}
	mustRun(t, pw, "push", "b", "app")
	head := strings.Fields(mustRun(t, e, "log", "--dot", "app", "-H"))[0]
	if got := mustRun(t, e, "list", "local", "-H"); !strings.HasPrefix(got, "app\tmaster\t") {
		t.Fatalf("dm list NODE lists the node's dots: %q", got)
	}

	if got := mustRun(t, pw, "list", "b", "-H"); !regexp.MustCompile(`^app\tmaster\t` + head + `\t2\t\d+\t\S+\n$`).MatchString(got) {
		t.Fatalf("dm list b -H: %q", got)
	}
	if got := mustRun(t, pw, "--remote", "b", "list"); !regexp.MustCompile(`DOT\s+BRANCH\s+HEAD\s+COMMITS\s+SIZE\s+UPDATED\napp\s+master\s+` + head[:12]).MatchString(got) {
		t.Fatalf("dm --remote b list:\n%s", got)
	}
	var listed []struct {
		Name     string `json:"name"`
		Branches []struct {
			Name, Head string
			Commits    int
		} `json:"branches"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, pw, "list", "b", "--json")), &listed); err != nil || len(listed) != 1 || listed[0].Name != "app" || listed[0].Branches[0].Head != head || listed[0].Branches[0].Commits != 2 {
		t.Fatalf("dm list b --json: %+v, %v", listed, err)
	}
	logIDs := func(args ...string) string {
		var ids []string
		for _, l := range strings.Split(strings.TrimSpace(mustRun(t, pw, args...)), "\n") {
			ids = append(ids, strings.Fields(l)[0])
		}
		return strings.Join(ids, " ")
	}
	node := logIDs("log", "--dot", "app", "-H")
	if got := logIDs("log", "--remote", "b", "app", "-H"); got != node {
		t.Fatalf("dm log --remote b app: %s; the node has %s", got, node)
	}
	if got := logIDs("log", "--remote", "b", "--dot", "app", "master^", "-H"); got != strings.Fields(node)[1] {
		t.Fatalf("dm log --remote b --dot app master^: %s", got)
	}
	failsWithCode(t, runDM(t, pw, "log", "--remote", "b"), "usage: dm log --remote b DOT [REF]", exitUsage)
	failsWithCode(t, runDM(t, pw, "log", "--remote", "b", "nope"), "`dm list b` shows what the bucket holds", exitNotFound)

	if got := mustRun(t, pw, "gc", "b", "--keep", "1", "--dry-run"); !strings.Contains(got, "would remove 1 commits") {
		t.Fatalf("dm gc --dry-run: %q", got)
	}
	if got := mustRun(t, pw, "gc", "b", "--keep", "1"); !strings.Contains(got, "removed 1 commits") {
		t.Fatalf("dm gc: %q", got)
	}
	if got := logIDs("log", "--remote", "b", "app", "-H"); got != head {
		t.Fatalf("after gc --keep 1 the bucket's log is %s; want %s", got, head)
	}

	if r := runDM(t, pw, "verify", "b", "--read-data"); r.code != 0 || !strings.Contains(r.out, "0 problems") {
		t.Fatalf("dm verify b: %+v", r)
	}
	failsWith(t, runDM(t, pw, "verify", "b", "--read-data=0"), "must be a percentage")
	var blob string
	filepath.WalkDir(filepath.Join(dir, "packs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && blob == "" {
			blob = path
		}
		return nil
	})
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[10] ^= 1 // in the pack's first blob, which the clone needs
	if err := os.WriteFile(blob, b, 0o600); err != nil {
		t.Fatal(err)
	}
	name, _ := filepath.Rel(dir, blob)
	r := runDM(t, pw, "verify", "b", "--read-data")
	failsWithCode(t, r, "verify found damaged data", exitCorrupt)
	if !strings.Contains(r.out, "damaged object "+name) {
		t.Fatalf("dm verify does not name %s:\n%s", name, r.out)
	}
	// A clone refuses the damaged chunk, naming the remote.
	failsWithCode(t, runDM(t, pw, "clone", "b", "app", "--local-name", "copy"), "bucket remote b: ", exitCorrupt)
}
