package cli

import (
	"reflect"
	"testing"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/internal/node"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "4096": 4096, "10G": 10 << 30, "512M": 512 << 20, "512m": 512 << 20,
		"64K": 64 << 10, "2T": 2 << 40, "10GiB": 10 << 30, "10GB": 10 << 30, "1.5G": 3 << 29, " 8 G ": 8 << 30, "100B": 100,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "0", "-1G", "10X", "1e9", "0x10", "nan", "inf", "1..2G", "10GG", "99999999T"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", in, got)
		}
	}
}

// Only the backend flags given reach the daemon and the serve cluster init
// starts; the rest stay zero so that the node's remembered settings apply.
func TestBackendFlags(t *testing.T) {
	var bf backendFlags
	f := pflag.NewFlagSet("x", pflag.ContinueOnError)
	bf.add(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var c node.Config
	bf.apply(&c)
	if !reflect.DeepEqual(c, node.Config{}) || len(bf.args()) != 0 {
		t.Errorf("no flags: %+v %q", c, bf.args())
	}

	bf = backendFlags{}
	f = pflag.NewFlagSet("x", pflag.ContinueOnError)
	bf.add(f)
	if err := f.Parse([]string{"--backend", "zfs", "--zfs-pool", "tank", "--pool-size", "2G", "--enable-backends", "btrfs,files"}); err != nil {
		t.Fatal(err)
	}
	bf.apply(&c)
	want := node.Config{Backend: "zfs", ZFSPool: "tank", PoolSize: 2 << 30, EnableBackends: []string{"btrfs", "files"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config %+v, want %+v", c, want)
	}
	wantArgs := []string{"--backend=zfs", "--zfs-pool=tank", "--pool-size=2147483648", "--enable-backends=btrfs,files"}
	if got := bf.args(); !reflect.DeepEqual(got, wantArgs) {
		t.Errorf("args %q, want %q", got, wantArgs)
	}
	if err := f.Parse([]string{"--pool-size", "lots"}); err == nil {
		t.Error("--pool-size lots accepted")
	}
}
