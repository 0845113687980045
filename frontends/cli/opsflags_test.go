package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// What `dm serve` takes for operating the node, `dm cluster init/join`
// pass on to the node they start; a bad --log-format is refused first.
func TestOpsFlags(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--log-format=json"},
		{"--metrics-listen=127.0.0.1:9327", "--pprof=false"},
		{"--metrics-listen=10.0.0.1:9327", "--metrics-listen-public", "--log-format=json"},
		{"--memory-limit=1073741824"},
		{"--memory-limit=0"},
	} {
		var of opsFlags
		f := pflag.NewFlagSet("init", pflag.ContinueOnError)
		of.add(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		got, err := of.args()
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(args)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("flags %q are passed on as %q", args, got)
		}
		var cfg node.Config
		of.apply(&cfg)
		if cfg.NoProfiler != slices.Contains(args, "--pprof=false") || cfg.MetricsListenPublic != slices.Contains(args, "--metrics-listen-public") || (cfg.MetricsListen != "") != strings.Contains(strings.Join(args, " "), "--metrics-listen=") {
			t.Errorf("flags %q give the config %+v", args, cfg)
		}
	}

	t.Setenv("GOMEMLIMIT", "")
	for v, want := range map[string]int64{"": defaultMemoryLimit, "512M": 512 << 20, "off": 0, "0": 0} {
		var of opsFlags
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		of.add(f)
		if v != "" {
			if err := f.Parse([]string{"--memory-limit=" + v}); err != nil {
				t.Fatal(err)
			}
		}
		var cfg node.Config
		of.apply(&cfg)
		if cfg.MemoryLimit != want {
			t.Errorf("--memory-limit %q gives %d; want %d", v, cfg.MemoryLimit, want)
		}
	}
	if err := (&memLimitFlag{}).Set("lots"); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("--memory-limit lots: %v", err)
	}

	of := opsFlags{logLevel: "debug", logFormat: "json"}
	var buf bytes.Buffer
	log, err := of.logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hello", "n", 1)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "hello" || line["level"] != "DEBUG" {
		t.Errorf("a json log line: %s (%v)", buf.Bytes(), err)
	}
	// dm cluster init and join pass the level on to the serve they start.
	if args, err := of.args(); err != nil || !slices.Contains(args, "--log-level=debug") || !slices.Contains(args, "--log-format=json") {
		t.Errorf("args of --log-level debug --log-format json: %q (%v)", args, err)
	}
	if args, err := (&opsFlags{logLevel: "info", logFormat: "text", pprof: true}).args(); err != nil || len(args) != 0 {
		t.Errorf("args of the defaults: %q (%v); want none", args, err)
	}
	of.logLevel = "loud"
	if _, err := of.args(); !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "choose debug, info, warn or error") {
		t.Errorf("--log-level loud: %v", err)
	}
	of.logLevel, of.logFormat = "info", "xml"
	if _, err := of.args(); !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "choose text or json") {
		t.Errorf("--log-format xml: %v", err)
	}
}
