package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var tagged struct {
	once    sync.Once
	dm, err string
}

// taggedDM builds dm the way `make build` stamps it, from a git
// repository whose HEAD carries the tag v9.8.7, and returns its path.
func taggedDM(t *testing.T) string {
	t.Helper()
	tagged.once.Do(func() {
		dir, err := os.MkdirTemp("", "dm-tagged-")
		if err != nil {
			tagged.err = err.Error()
			return
		}
		tagged.dm = filepath.Join(dir, "dm")
		git := func(args ...string) string {
			cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
			out, err := cmd.CombinedOutput()
			if err != nil && tagged.err == "" {
				tagged.err = "git " + strings.Join(args, " ") + ": " + err.Error() + ": " + string(out)
			}
			return string(out)
		}
		git("init", "-q")
		git("commit", "-q", "--allow-empty", "-m", "release")
		git("tag", "-a", "v9.8.7", "-m", "v9.8.7")
		if tagged.err != "" {
			return
		}
		// The Makefile's VERSION comes from git describe; point it at the
		// tagged repository.
		mk := exec.Command("make", "-s", "--no-print-directory", "-C", repoRoot(t), "version")
		mk.Env = append(os.Environ(), "GIT_DIR="+filepath.Join(dir, ".git"))
		v, err := mk.CombinedOutput()
		if err != nil {
			tagged.err = "make version: " + err.Error() + ": " + string(v)
			return
		}
		build := exec.Command("go", "build", "-ldflags", "-X github.com/dotmesh-io/dotmesh/frontends/cli.Version="+strings.TrimSpace(string(v)), "-o", tagged.dm, "./cmd/dm")
		build.Dir = repoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			tagged.err = "go build: " + err.Error() + ": " + string(out)
		}
	})
	if tagged.err != "" {
		t.Fatal(tagged.err)
	}
	return tagged.dm
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tagged.dm != "" {
		os.RemoveAll(filepath.Dir(tagged.dm))
	}
	os.Exit(code)
}

// runBinary runs the built dm with HOME in a temp dir (no remote).
func runBinary(t *testing.T, dm string, args ...string) string {
	t.Helper()
	cmd := exec.Command(dm, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dm %v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestTaggedBuildPrintsTag(t *testing.T) {
	dm := taggedDM(t)
	if got := runBinary(t, dm, "--version"); got != "Client: v9.8.7\n" {
		t.Fatalf("dm --version: %q", got)
	}
	if got := runBinary(t, dm, "version"); got != "Client: v9.8.7\n" {
		t.Fatalf("dm version: %q", got)
	}
}

func TestVersionFlagIsVersionsClientLine(t *testing.T) {
	e, _ := testEnv(t)
	want := mustRun(t, e, "version")
	if got := mustRun(t, e, "--version"); got != want || got != "Client: "+Version+"\n" {
		t.Fatalf("dm --version %q, dm version %q", got, want)
	}
}

func TestCompletionScripts(t *testing.T) {
	dm := taggedDM(t)
	out, err := exec.Command("bash", "-c", `source <("$0" completion bash) && complete -p dm`, dm).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "__start_dm dm") {
		t.Fatalf("bash completion: %v: %s", err, out)
	}
	e, _ := testEnv(t)
	for shell, want := range map[string]string{"zsh": "#compdef dm", "fish": "complete -c dm", "powershell": "Register-ArgumentCompleter"} {
		if got := mustRun(t, e, "completion", shell); !strings.Contains(got, want) {
			t.Errorf("dm completion %s lacks %q", shell, want)
		}
	}
	// The help says how to install each.
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if got := mustRun(t, e, "completion", shell, "--help"); !strings.Contains(got, "dm completion "+shell+" >") {
			t.Errorf("dm completion %s --help says not how to install it:\n%s", shell, got)
		}
	}
}

// completions runs cobra's hidden __complete and returns the candidates
// and the directive line.
func completions(t *testing.T, e map[string]string, args ...string) ([]string, string) {
	t.Helper()
	r := runDM(t, e, append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("dm __complete %v: %+v", args, r)
	}
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestDynamicCompletion(t *testing.T) {
	e, _ := withNode(t)
	mustRun(t, e, "init", "app")
	mustRun(t, e, "init", "zeta")
	mustRun(t, e, "switch", "app")
	mustRun(t, e, "commit", "--allow-empty", "-m", "first")
	mustRun(t, e, "branch", "feature")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"switch", ""}, "app zeta"},
		{[]string{"path", "z"}, "zeta"},
		{[]string{"switch", "app", ""}, ""},
		{[]string{"checkout", ""}, "feature master"},
		{[]string{"checkout", "--dot", "zeta", ""}, "master"},
		{[]string{"push", ""}, "local"},
		{[]string{"--remote", ""}, "local"},
	} {
		got, directive := completions(t, e, c.args...)
		if strings.Join(got, " ") != c.want || directive != ":4" {
			t.Errorf("dm __complete %q: %q %s; want %q :4", c.args, got, directive, c.want)
		}
	}
}

func TestCompletionPathsExist(t *testing.T) {
	root := NewRootCommand(IO{}, testWiring)
	a := &app{}
	for path := range a.completionFuncs() {
		c, rest, err := root.Find(strings.Fields(path)[1:])
		if err != nil || len(rest) != 0 || c.CommandPath() != path || c.ValidArgsFunction == nil {
			t.Errorf("%q: no such command (found %q, %v)", path, c.CommandPath(), err)
		}
	}
}

func TestCompletionWithoutNodeIsEmpty(t *testing.T) {
	e, path := testEnv(t)
	// A remote where nothing listens: no candidates, no error.
	writeConfig(t, path, &Config{CurrentRemote: "gone", Remotes: map[string]*Remote{
		"gone": {User: "admin", Address: "127.0.0.1:1", APIKey: "k", CurrentDot: "app"},
	}})
	for _, args := range [][]string{{"switch", ""}, {"checkout", ""}} {
		r := runDM(t, e, append([]string{"__complete"}, args...)...)
		if r.code != 0 || !strings.HasPrefix(r.out, ":4\n") {
			t.Errorf("dm __complete %q: %+v", args, r)
		}
	}
	// No config at all.
	e, _ = testEnv(t)
	if got, _ := completions(t, e, "switch", ""); len(got) != 0 {
		t.Errorf("without a remote: %q", got)
	}
}

func TestManPages(t *testing.T) {
	for _, tool := range []string{"man", "groff"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to render the man pages (scripts/ensure-packages.sh man-db groff-base): %v", tool, err)
		}
	}
	e, _ := testEnv(t)
	dir := filepath.Join(t.TempDir(), "man1")
	mustRun(t, e, "docs", "man", dir)
	for _, page := range []string{"dm.1", "dm-commit.1", "dm-remote-add.1", "dm-completion-bash.1"} {
		p := filepath.Join(dir, page)
		cmd := exec.Command("man", "-l", p)
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=80")
		out, err := cmd.CombinedOutput()
		name := strings.TrimSuffix(page, ".1")
		if err != nil || !strings.Contains(string(out), "SYNOPSIS") || !strings.Contains(string(out), name) {
			t.Errorf("man -l %s: %v:\n%s", page, err, out)
		}
		warn, err := // -k: the pages are UTF-8 (preconv), as man reads them.
			exec.Command("groff", "-k", "-man", "-Tutf8", "-ww", "-z", p).CombinedOutput()
		if err != nil || len(warn) != 0 {
			t.Errorf("groff %s: %v: %s", page, err, warn)
		}
	}
	if r := runDM(t, e, "docs", "man"); r.code != exitUsage {
		t.Errorf("dm docs man without DIR: %+v", r)
	}
}

func TestTypoSuggestions(t *testing.T) {
	e, _ := testEnv(t)
	for typed, want := range map[string]string{
		"comit":   "did you mean: commit",
		"brnach":  "did you mean: branch",
		"chekout": "did you mean: checkout",
		"clnoe":   "did you mean: clone",
	} {
		failsWith(t, runDM(t, e, typed), want)
	}
	r := runDM(t, e, "merge")
	failsWith(t, r, `unknown command "merge" for "dm"`)
	if strings.Contains(r.err, "serve") || strings.Contains(r.err, "did you mean") {
		t.Errorf("dm merge: %q", r.err)
	}
}

func TestSwaps(t *testing.T) {
	if got := strings.Join(swaps("pull"), " "); got != "upll plul" {
		t.Fatalf("swaps(pull) = %q", got)
	}
}

func TestJSONInfoNumbers(t *testing.T) {
	e, _ := withNode(t)
	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app"))
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	type info struct {
		Info map[string]any `json:"info"`
	}
	var commit info
	if err := json.Unmarshal([]byte(mustRun(t, e, "commit", "--dot", "app", "-m", "m", "--json")), &commit); err != nil {
		t.Fatal(err)
	}
	var log []info
	if err := json.Unmarshal([]byte(mustRun(t, e, "log", "--dot", "app", "--json")), &log); err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Head info `json:"head"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	var show struct {
		Head info `json:"head"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "dot", "show", "app", "--json")), &show); err != nil {
		t.Fatal(err)
	}
	for what, in := range map[string]info{"commit": commit, "log": log[0], "list": list[0].Head, "dot show": show.Head} {
		if b, ok := in.Info["bytes"].(float64); !ok || b != 3 {
			t.Errorf("%s --json: info.bytes = %#v, want the number 3", what, in.Info["bytes"])
		}
	}
}

func TestInfoValue(t *testing.T) {
	for in, want := range map[string]any{
		"3": int64(3), "-12": int64(-12), "0": int64(0),
		"007": "007", "1.5": "1.5", "": "", "zstd 1.5": "zstd 1.5", "+3": "+3",
		"99999999999999999999": "99999999999999999999",
	} {
		if got := infoValue(in); got != want {
			t.Errorf("infoValue(%q) = %#v, want %#v", in, got, want)
		}
	}
}

// FuzzInfoValue: a value becomes a number only when the number prints
// back as the same text; anything else stays the text.
func FuzzInfoValue(f *testing.F) {
	for _, s := range []string{"3", "-0", "007", "1e3", " 3", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		switch v := infoValue(s).(type) {
		case int64:
			if strconv.FormatInt(v, 10) != s {
				t.Fatalf("%q became %d", s, v)
			}
		case string:
			if v != s {
				t.Fatalf("%q became %q", s, v)
			}
		default:
			t.Fatalf("%q became %#v", s, v)
		}
	})
}
