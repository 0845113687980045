package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// opsFlags are `dm serve`'s flags for operating the node: its log's
// level and format, where the metrics are served, and the profiler.
type opsFlags struct {
	logLevel      string
	logFormat     string
	metricsListen string
	metricsPublic bool
	pprof         bool
	memLimit      memLimitFlag
}

// defaultMemoryLimit is --memory-limit's default: see node.Config.MemoryLimit.
const defaultMemoryLimit = 256 << 20

// memLimitFlag is a SIZE, or 0 / off for none; it remembers whether it
// was given.
type memLimitFlag struct {
	n   int64
	set bool
}

func (m *memLimitFlag) String() string {
	if !m.set {
		return "256M"
	}
	return strconv.FormatInt(m.n, 10)
}

func (m *memLimitFlag) Type() string { return "SIZE" }

func (m *memLimitFlag) Set(v string) error {
	m.set = true
	if t := strings.TrimSpace(v); t == "0" || strings.EqualFold(t, "off") {
		m.n = 0
		return nil
	}
	n, err := parseSize(v)
	m.n = n
	return err
}

// bytes is the limit the node gets: the default unless given, and none
// when GOMEMLIMIT (which the Go runtime reads itself) is set instead.
func (m *memLimitFlag) bytes() int64 {
	if m.set {
		return m.n
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	return defaultMemoryLimit
}

func (o *opsFlags) add(f *pflag.FlagSet) {
	f.StringVar(&o.logLevel, "log-level", "info", "log `LEVEL`: debug (also every zfs/zpool command and its duration), info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log `FORMAT`: text (key=value lines) or json (one JSON object a line)")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "also serve the Prometheus metrics at /metrics on `ADDR` (HOST:PORT), without a key; loopback only unless --metrics-listen-public")
	f.BoolVar(&o.metricsPublic, "metrics-listen-public", false, "allow a --metrics-listen address beyond loopback (anyone reaching it reads the metrics)")
	f.Var(&o.memLimit, "memory-limit", "soft limit of the node's Go memory: the collector runs sooner near it rather than let the heap reach twice its live data (0 or off: none; GOMEMLIMIT rules when set and this flag is not); a node whose live data outgrow it still runs")
	f.BoolVar(&o.pprof, "pprof", true, "serve Go's profiler under /debug/pprof/ on the API's address, to the admin only (--pprof=false turns it off)")
}

// logger makes the node's logger on w at the chosen level, in the chosen
// format.
func (o *opsFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: choose debug, info, warn or error", dotmesh.ErrInvalidArgument, o.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: choose text or json", dotmesh.ErrInvalidArgument, o.logFormat)
}

func (o *opsFlags) apply(cfg *node.Config) {
	cfg.MetricsListen = o.metricsListen
	cfg.MetricsListenPublic = o.metricsPublic
	cfg.NoProfiler = !o.pprof
	cfg.MemoryLimit = o.memLimit.bytes()
}

// args are the flags given, for the `dm serve` that `dm cluster init` and
// `join` start; a bad --log-level or --log-format is refused here,
// before it starts.
func (o *opsFlags) args() ([]string, error) {
	if _, err := o.logger(io.Discard); err != nil {
		return nil, err
	}
	var out []string
	if o.logLevel != "info" {
		out = append(out, "--log-level="+o.logLevel)
	}
	if o.logFormat != "text" {
		out = append(out, "--log-format="+o.logFormat)
	}
	if o.metricsListen != "" {
		out = append(out, "--metrics-listen="+o.metricsListen)
	}
	if o.metricsPublic {
		out = append(out, "--metrics-listen-public")
	}
	if !o.pprof {
		out = append(out, "--pprof=false")
	}
	if o.memLimit.set {
		out = append(out, "--memory-limit="+strconv.FormatInt(o.memLimit.n, 10))
	}
	return out, nil
}
