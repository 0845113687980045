package zfs

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
)

// recRows renders a record as the properties KeepRecords sets.
func recRows(key string, v []byte) []propRow {
	enc := base64.StdEncoding.EncodeToString(v)
	var parts []string
	for len(enc) > recPartSize {
		parts, enc = append(parts, enc[:recPartSize]), enc[recPartSize:]
	}
	parts = append(parts, enc)
	rows := []propRow{{"pool/r/d", recProp(key, 0), fmt.Sprintf("%d:%08x:%s", len(parts), crc32.ChecksumIEEE(v), parts[0])}}
	for i := 1; i < len(parts); i++ {
		rows = append(rows, propRow{"pool/r/d", recProp(key, i), parts[i]})
	}
	return rows
}

func TestDecodeRecProps(t *testing.T) {
	big := bytes.Repeat([]byte("x\ty\n\x00"), 5000)
	rows := append(recRows("commit.abc", big), recRows("branch.Master", []byte(`{}`))...)
	rows = append(rows, propRow{"pool/r/d", "io.dotmesh:state", "live"})
	recs, err := decodeRecProps(rows)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(recs["commit.abc"], big) || string(recs["branch.Master"]) != "{}" || len(recs) != 2 {
		t.Fatalf("decoded %d records", len(recs))
	}
	// A record torn between two parts by a crash is left out, not fatal.
	torn := recRows("commit.abc", big)
	torn[1].value = strings.Repeat("A", len(torn[1].value))
	if recs, err := decodeRecProps(torn); err != nil || len(recs) != 0 {
		t.Fatalf("torn record: %v, %d records", err, len(recs))
	}
	// Names that are no record key are refused.
	if _, err := decodeRecProps([]propRow{{"d", recPropPrefix + "zz", "1:0:"}}); err == nil {
		t.Fatal("a property naming no record was accepted")
	}
}

func FuzzDecodeRecProps(f *testing.F) {
	for _, r := range recRows("commit.abc", bytes.Repeat([]byte("m"), 7000)) {
		f.Add(r.prop, r.value, "")
	}
	f.Add(recProp("dot", 0), "1:00000000:", recProp("dot", 1))
	f.Fuzz(func(t *testing.T, prop, value, prop2 string) {
		recs, err := decodeRecProps([]propRow{{"d", prop, value}, {"d", prop2, value}})
		if err != nil {
			return
		}
		for k, v := range recs {
			if len(v) > 1<<20 || k == "" {
				t.Fatalf("record %q of %d bytes", k, len(v))
			}
		}
	})
}
