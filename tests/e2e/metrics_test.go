package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freeAddr returns ip:port with a port free at the time of asking.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listening on %s (loopback aliases 127.0.0.x are needed): %v", ip, err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs Debian's prometheus scraping targets every
// second, on ip, with its data in a temp dir; it is killed (by PID) when
// the test ends. It returns its base URL.
func startPrometheus(t *testing.T, ip string, targets ...string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus (Debian package prometheus) is needed: %v; install it with scripts/ensure-packages.sh prometheus", err)
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: dotmesh\n    static_configs:\n      - targets: [%s]\n", strings.Join(quoted, ", "))
	must(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600))
	addr := freeAddr(t, ip)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	must(t, err)
	defer logf.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", lastLines(string(b), 30))
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus exited: %s", lastLines(string(b), 30))
		default:
		}
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("prometheus on %s was not ready in 30s", addr)
	return ""
}

// promQuery asks Prometheus's HTTP query API for the value of a query
// that yields one series; ok is false when it yields none.
func promQuery(t *testing.T, base, query string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatalf("querying prometheus: %v", err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("prometheus query %s: %v %s %s", query, err, r.Status, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	if len(r.Data.Result) > 1 {
		t.Fatalf("prometheus query %s: %d series, want one", query, len(r.Data.Result))
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("prometheus query %s: value %v", query, r.Data.Result[0].Value)
	}
	return v, true
}

// waitQuery polls Prometheus until query's value is want.
func waitQuery(t *testing.T, base, query string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var v float64
	var ok bool
	for time.Now().Before(deadline) {
		if v, ok = promQuery(t, base, query); ok && v == want {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("prometheus: %s = %v (present %v), want %v", query, v, ok, want)
}

func httpGet(t *testing.T, u, user, key string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	must(t, err)
	if user != "" {
		req.SetBasicAuth(user, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, b
}

// A real Prometheus scrapes two nodes (--metrics-listen on loopback)
// through a workload of commits and a push from one to the other; its
// query API then answers the operation counters with the right values.
// The exposition passes `promtool check metrics`; /metrics on the API
// port is the admin's; the JSON log lines parse and carry request ids,
// and a failed push is logged as a failure.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	ma, mb := freeAddr(t, "127.0.0.4"), freeAddr(t, "127.0.0.5")
	a := startServe(t, "a", "127.0.0.1", "--metrics-listen", ma, "--log-format", "json", "--log-level", "debug")
	b := startServe(t, "b", "127.0.0.2", "--metrics-listen", mb, "--log-format", "json", "--log-level", "debug")
	prom := startPrometheus(t, "127.0.0.6", ma, mb)

	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "app")
	dir := e.pathOn(a, "app")
	for i := range 3 {
		writeFile(t, filepath.Join(dir, "f"), strings.Repeat("x", 1000*(i+1)))
		e.commitOn(a, "app", fmt.Sprintf("commit %d", i))
	}
	s := e.transfer(a, "push", "b", "app")
	if s.Commits != 3 {
		t.Fatalf("push: %+v; want 3 commits", s)
	}

	for _, q := range []struct {
		query string
		want  float64
	}{
		{`dotmesh_operations_total{instance="` + ma + `",op="commit",result="ok"}`, 3},
		{`dotmesh_operations_total{instance="` + ma + `",op="push",result="ok"}`, 1},
		{`dotmesh_operations_total{instance="` + mb + `",op="receive",result="ok"}`, 3},
		{`dotmesh_operations_total{instance="` + mb + `",op="commit",result="ok"}`, 0},
		{`dotmesh_operation_duration_seconds_count{instance="` + ma + `",op="commit"}`, 3},
		{`dotmesh_transfers_in_progress{instance="` + ma + `",op="push"}`, 0},
		{`dotmesh_dots{instance="` + mb + `"}`, 1},
		{`dotmesh_transfer_bytes_total{instance="` + ma + `",direction="sent"}`, float64(s.Bytes)},
		{`dotmesh_transfer_bytes_total{instance="` + mb + `",direction="received"}`, float64(s.Bytes)},
		{`count(dotmesh_build_info)`, 2},
	} {
		waitQuery(t, prom, q.query, q.want)
	}

	// promtool on what the metrics address serves.
	status, body := httpGet(t, "http://"+ma+"/metrics", "", "")
	if status != 200 {
		t.Fatalf("GET /metrics on --metrics-listen: %d %s", status, body)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian package prometheus) is needed: %v", err)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// On the API port: the admin's.
	bobKey := strings.TrimSpace(e.on(a, "user", "add", "bob", "-H"))
	for _, c := range []struct {
		who, user, key string
		want           int
	}{{"nobody", "", "", 401}, {"a wrong key", "admin", "wrong", 401}, {"bob", "bob", bobKey, 403}, {"the admin", "admin", a.key, 200}} {
		if status, body := httpGet(t, a.url()+"/metrics", c.user, c.key); status != c.want {
			t.Errorf("GET /metrics on the API port as %s: %d, want %d: %.200s", c.who, status, c.want, body)
		}
	}

	// A push to a node that is gone fails; its request is logged as a
	// failure, at ERROR (the peer is unavailable: 503), not INFO.
	b.stop()
	e.fails("", "--remote", "a", "push", "b", "app")
	// A request's line is written once its handler returns, which may
	// be after the client has read the whole answer: wait for it.
	var pushes []map[string]any
	ids := map[string]int{}
	for deadline := time.Now().Add(10 * time.Second); ; {
		pushes, ids = nil, map[string]int{}
		for _, l := range jsonLog(t, a.log) {
			if l["msg"] == "http request" {
				id, _ := l["request_id"].(string)
				ids[id]++
				if l["path"] == "/v1/transfers" {
					pushes = append(pushes, l)
				}
			}
		}
		if len(pushes) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ids[""] > 0 {
		t.Errorf("%d request lines without request_id", ids[""])
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("request id %s names %d requests", id, n)
		}
	}
	if len(pushes) != 2 {
		t.Fatalf("%d transfer requests logged on a, want 2: %v", len(pushes), pushes)
	}
	// The push's calls to b carry its id: b's lines of them too.
	pushID, onB := pushes[0]["request_id"], 0
	for _, l := range jsonLog(t, b.log) {
		if l["msg"] == "http request" && l["request_id"] == pushID {
			onB++
		}
	}
	if onB < 3 { // state, the commits, finish
		t.Errorf("b logged %d requests with the push's request id %v, want its state, commit and finish calls", onB, pushID)
	}
	transferLine := pushes[1]
	if transferLine == nil || transferLine["level"] != "ERROR" || transferLine["err"] == nil || transferLine["error_status"] != float64(503) {
		t.Errorf("the failed push is logged as %v; want level ERROR with error_status 503 and err", transferLine)
	}
}

// --metrics-listen beyond loopback is refused without
// --metrics-listen-public, before anything starts.
func TestMetricsListenPublicRefused(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(dmBin, "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", freeAddr(t, "127.0.0.1"), "--metrics-listen", "0.0.0.0:0", "--docker-socket", "")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--metrics-listen-public") {
		t.Fatalf("dm serve --metrics-listen 0.0.0.0:0: %v, %s; want a refusal naming --metrics-listen-public", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("the refused start made its data directory")
	}
}

// jsonLog decodes every whole line of a --log-format json log (a line
// still being written is left for the next read).
func jsonLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	var out []map[string]any
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if !bytes.HasSuffix(line, []byte("\n")) || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l map[string]any
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("a line of %s (--log-format json) is not JSON: %v: %s", path, err, line)
		}
		out = append(out, l)
	}
	return out
}
