package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// tourSkip marks README tour lines that need cluster mode (etcd), which
// the tour test does not run.
const tourSkip = "cluster mode only"

// tourLines returns the commands of the ```sh block under "## CLI tour" in
// README.md, as written.
func tourLines(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	in, block := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "## CLI tour":
			in = true
		case in && !block && l == "```sh":
			block = true
		case block && l == "```":
			return lines
		case block && strings.TrimSpace(l) != "":
			lines = append(lines, l)
		}
	}
	t.Fatal("README.md has no ```sh block under \"## CLI tour\"")
	return nil
}

// TestReadmeTour runs README's CLI tour literally, one line after another
// in one bash (so cd carries over), with the dm under test first on PATH
// and HOME a temp dir, so `dm cluster init` makes ~/.dotmesh there. The
// tour's node listens on the default port 127.0.0.1:32607 and serves
// Docker's default plugin socket, so bash runs in its own network and
// mount namespaces (unshare; a fresh loopback and a private tmpfs on
// /run): the tour never meets a live node's port or socket. Every line
// must exit 0, except those marked "cluster mode only" (skipped). The
// node is stopped by its pid at the end, also on failure.
func TestReadmeTour(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the README tour test needs root for private network and mount namespaces (unshare --net --mount); run it as root")
	}
	for _, tool := range []string{"unshare", "ip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README tour test needs %s (util-linux, iproute2, bash): %v", tool, err)
		}
	}
	lines := tourLines(t)
	root := t.TempDir()
	home := filepath.Join(root, "home")
	outs := filepath.Join(root, "out")
	for _, d := range []string{home, outs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { killNode(t, filepath.Join(home, ".dotmesh", "data")) })

	var script strings.Builder
	script.WriteString("exec 3>\"$TOUR_OUT/status\"\ncd\n")
	var run []int // indexes of the lines run
	for i, l := range lines {
		if strings.Contains(l, tourSkip) {
			t.Logf("skipped (%s): %s", tourSkip, l)
			continue
		}
		run = append(run, i)
		// The line on its own line, so its comment ends there.
		fmt.Fprintf(&script, "{\n%s\n} >\"$TOUR_OUT/%d.out\" 2>\"$TOUR_OUT/%d.err\"\n__tour_rc=$?; echo \"%d $__tour_rc\" >&3; [ $__tour_rc -eq 0 ] || exit 1\n", l, i, i, i)
	}
	scriptPath := filepath.Join(root, "tour.sh")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--net", "--mount", "--fork", "--", "bash", "-c",
		`ip link set lo up && mount -t tmpfs -o mode=0755 tmpfs /run && exec bash "$1"`, "tour", scriptPath)
	cmd.Dir = root
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "DOTMESH_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOME="+home, "TOUR_OUT="+outs, "PATH="+filepath.Dir(dmBin)+":"+os.Getenv("PATH"))
	combined, err := cmd.CombinedOutput()

	status, _ := os.ReadFile(filepath.Join(outs, "status"))
	codes := map[int]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(status)), "\n") {
		var i, code int
		if _, err := fmt.Sscanf(l, "%d %d", &i, &code); err == nil {
			codes[i] = code
		}
	}
	output := func(i int) (string, string) {
		o, _ := os.ReadFile(filepath.Join(outs, strconv.Itoa(i)+".out"))
		e, _ := os.ReadFile(filepath.Join(outs, strconv.Itoa(i)+".err"))
		return string(o), string(e)
	}
	for _, i := range run {
		code, ran := codes[i]
		if !ran {
			t.Fatalf("the tour stopped before line %q (bash: %v, %s)", lines[i], err, combined)
		}
		if code != 0 {
			o, e := output(i)
			t.Fatalf("README tour line %q exited %d\nstdout: %s\nstderr: %s", lines[i], code, o, e)
		}
	}
	if err != nil {
		t.Fatalf("bash running the tour: %v, %s", err, combined)
	}

	// What the tour's comments promise.
	find := func(prefix string, nth int) int {
		for _, i := range run {
			if strings.HasPrefix(lines[i], prefix) {
				if nth == 0 {
					return i
				}
				nth--
			}
		}
		t.Fatalf("the tour has no line %q (#%d)", prefix, nth+1)
		return -1
	}
	_, warned := output(find("dm checkout -b experiment", 0))
	t.Logf("dm checkout -b experiment warned: %s", warned)
	if e := warned; !regexp.MustCompile(`still sees? branch master`).MatchString(e) || !strings.Contains(e, "(bash)") {
		t.Errorf("dm checkout -b experiment, run from a shell inside master's db, did not warn about it: %q", e)
	}
	if o, _ := output(find("dm list", 1)); !regexp.MustCompile(`(?m)^\* app\s+experiment\s.*\byes\b`).MatchString(o) {
		t.Errorf("dm list after editing through the stable path does not show experiment dirty:\n%s", o)
	}
	if o, _ := output(find("cat customers", 0)); o != "alice\nbob\n" {
		t.Errorf("master's customers after the experiment: %q, want alice and bob", o)
	}
	if o, _ := output(find("cat customers", 1)); o != "alice\n" {
		t.Errorf("customers after reset --hard HEAD^: %q, want alice", o)
	}
}
