package cli

import (
	"bytes"
	"testing"
)

func TestHumanSize(t *testing.T) {
	cases := map[int64]string{
		0:                "0 B",
		1:                "1 B",
		1023:             "1023 B",
		1024:             "1 KiB",
		1536:             "1.5 KiB",
		10 * 1024:        "10 KiB",
		10*1024 + 512:    "10 KiB",
		1024*1024 - 1:    "1 MiB",
		12 * 1024 * 1024: "12 MiB",
		5 << 30:          "5 GiB",
		3<<40 + 300<<30:  "3.3 TiB",
		-2048:            "-2 KiB",
		9*1024 + 1000:    "10 KiB",
	}
	for n, want := range cases {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestTableModes(t *testing.T) {
	mk := func(scripting bool) string {
		tb := &table{scripting: scripting, header: []string{"NAME", "VALUE"}}
		tb.add("a", "x\ty")
		tb.add("long-name", "new\nline")
		var b bytes.Buffer
		if err := tb.write(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got, want := mk(true), "a\tx y\nlong-name\tnew line\n"; got != want {
		t.Errorf("scripting:\n%q\nwant\n%q", got, want)
	}
	if got, want := mk(false), "NAME       VALUE\na          x y\nlong-name  new line\n"; got != want {
		t.Errorf("human:\n%q\nwant\n%q", got, want)
	}
}
