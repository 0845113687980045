package client

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// usualRecord is a record as a node stores and sends it.
const usualRecord = `{"id":"676dc47715d9454b5b66a1dbe4e2a70d","dot":"cdbeff6c","branch":"master","parent":"0052f375","author":"admin","time":"2026-12-05T17:05:22.971971138Z","message":"9999","info":{"added_bytes":"0","consistency":"file-by-file","dirs":"0"}}`

// sameAsGeneral fails t when the fast path decodes b, with and without
// kept Info keys, into another commit than the JSON v2 decoder, and
// says whether the fast path took it.
func sameAsGeneral(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	for _, keep := range []func(string) bool{nil, consistencyKey} {
		d := recordDecoder{}
		if keep != nil {
			d.ik = &infoKeys{keep: keep}
		}
		var got, want dotmesh.Commit
		if !d.fast(b, &got) {
			continue
		}
		fast = true
		if err := d.general(b, &want); err != nil {
			t.Fatalf("%q (keep %v): the fast path decodes %+v, the decoder fails: %v", b, keep != nil, got, err)
		}
		if !sameCommit(got, want) || (got.Info == nil) != (want.Info == nil) {
			t.Fatalf("%q (keep %v): the fast path decodes %+v, the decoder %+v", b, keep != nil, got, want)
		}
	}
	return fast
}

func TestRecordDecoder(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool // the usual shape: the fast path takes it
		bad  bool
	}{
		{in: usualRecord, fast: true},
		{in: `{"id":"a","dot":"d","branch":"b","author":"x","time":"2026-12-05T17:05:22+01:00","message":"two\nlines \u00e9 \"q\"","metadata":{"k":"v","é":"ü"},"pruned":true}`, fast: true},
		{in: `{"id":"a","time":"2026-12-05T17:05:22.5-23:59","pruned":false,"info":{"consistency.hook":"pg"}}`, fast: true},
		{in: `{"id":"a","extra":[1,{"x":null}]}`},
		{in: `{"\u0069d":"escaped name"}`},
		{in: `{"id":null,"metadata":null,"info":null}`},
		{in: `{"id":"a", "dot":"d"}`},
		{in: `{"info":{}}`},
		{in: `{"info":{"consistency.spread_ms":12}}`},
		{in: `{"time":"2026-12-05t17:05:22Z"}`, bad: true},
		{in: `{"time":"2026-12-05T17:05:22+24:00"}`, bad: true},
		{in: `{"id":1}`, bad: true},
		{in: `{"time":"yesterday"}`, bad: true},
		{in: `{"pruned":"yes"}`, bad: true},
		{in: `{"id":"a","id":"b"}`, bad: true},
		{in: `{"metadata":{"k":"v","k":"w"}}`, bad: true},
		{in: `{"info":{"x":"v","x":"w"}}`, bad: true},
		{in: "{\"id\":\"a\xff\"}", bad: true},
		{in: `{"id":"a"`, bad: true},
		{in: `{"id":"a"}}`, bad: true},
		{in: `["id"]`, bad: true},
	} {
		if fast := sameAsGeneral(t, []byte(tc.in)); fast != tc.fast {
			t.Errorf("%s: the fast path took it: %v, want %v", tc.in, fast, tc.fast)
		}
		d := recordDecoder{ik: &infoKeys{keep: consistencyKey}}
		var c dotmesh.Commit
		if err := d.decode([]byte(tc.in), &c); (err != nil) != tc.bad {
			t.Errorf("%s: decode: %v, want an error: %v", tc.in, err, tc.bad)
		}
	}
}

// Whatever the line, a commit or an error, never a panic; where the fast
// path decodes a line, the JSON v2 decoder decodes the same commit.
func FuzzRecordDecoder(f *testing.F) {
	f.Add([]byte(usualRecord))
	f.Add([]byte(`{"id":"a","time":"2026-12-05T17:05:22+01:00","message":"two\nlines \u00e9","metadata":{"k":"v"},"pruned":true}`))
	f.Add([]byte(`{"info":{"consistency":"crash","x":"1"},"id":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsGeneral(t, b)
		d := recordDecoder{}
		var c dotmesh.Commit
		_ = d.decode(b, &c)
	})
}

// historyLines is an api.HistoryLines answer: head, then the lines.
func historyLines(head api.HistoryHead, lines ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"count":%d,"more":%v,"current":%q}`+"\n", head.Count, head.More, head.Current)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func decodeHistoryLines(body string, each bool) (*api.HistoryPage, []dotmesh.Commit, error) {
	var page api.HistoryPage
	var got []dotmesh.Commit
	h := historyAnswer{page: &page, keep: consistencyKey}
	if each {
		h.each = func(p *api.HistoryPage, c *dotmesh.Commit) error {
			got = append(got, *c)
			return nil
		}
	}
	err := h.decodeLines(strings.NewReader(body))
	if !each {
		got = page.Commits
	}
	return &page, got, err
}

func TestDecodeLines(t *testing.T) {
	long := `{"id":"b","message":"` + strings.Repeat("x", 200<<10) + `"}`
	body := historyLines(api.HistoryHead{Count: 2, More: true, Current: "master"}, usualRecord, long)
	for _, each := range []bool{false, true} {
		page, got, err := decodeHistoryLines(body, each)
		if err != nil || !page.More || page.Current != "master" || len(got) != 2 {
			t.Fatalf("each %v: %+v, %d commits, %v", each, page, len(got), err)
		}
		if got[0].ID != "676dc47715d9454b5b66a1dbe4e2a70d" || got[0].Info["consistency"] != "file-by-file" || len(got[0].Info) != 1 {
			t.Errorf("each %v: first commit %+v", each, got[0])
		}
		if got[1].ID != "b" || len(got[1].Message) != 200<<10 {
			t.Errorf("each %v: a line longer than the buffer: %s, %d bytes of message", each, got[1].ID, len(got[1].Message))
		}
	}
	for name, bad := range map[string]string{
		"fewer than counted": historyLines(api.HistoryHead{Count: 3}, usualRecord, usualRecord),
		"more than counted":  historyLines(api.HistoryHead{Count: 1}, usualRecord, usualRecord),
		"cut inside a line":  strings.TrimSuffix(historyLines(api.HistoryHead{Count: 1}, usualRecord), "}\n"),
		"cut long line":      historyLines(api.HistoryHead{Count: 1}) + long,
		"no head":            "",
		"bad head":           "[]\n",
		"negative count":     `{"count":-1}` + "\n",
		"bad record":         historyLines(api.HistoryHead{Count: 1}, `{"id":1}`),
	} {
		if _, _, err := decodeHistoryLines(bad, true); err == nil {
			t.Errorf("%s: decoded, want an error", name)
		}
	}
}

// Whatever the answer, a page or an error, never a panic; a page holds
// the commits its head counts.
func FuzzHistoryLines(f *testing.F) {
	f.Add([]byte(historyLines(api.HistoryHead{Count: 1, Current: "master"}, usualRecord)))
	f.Add([]byte(historyLines(api.HistoryHead{Count: 2}, `{"id":"a"}`, `{"id":"b","pruned":true}`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var page api.HistoryPage
		err := historyAnswer{page: &page}.decodeLines(bytes.NewReader(b))
		if err == nil {
			var head api.HistoryHead
			line, _, _ := bytes.Cut(b, []byte{'\n'})
			if jerr := jsonv2.Unmarshal(line, &head); jerr != nil || head.Count != len(page.Commits) {
				t.Fatalf("%q: decoded %d commits; head %+v (%v)", b, len(page.Commits), head, jerr)
			}
		}
	})
}

// BenchmarkHistoryDecode compares the two answers of a log of 10,000
// commits as `dm log` decodes them (each commit handed over, Info's
// consistency keys kept): a JSON page and history lines.
func BenchmarkHistoryDecode(b *testing.B) {
	var page, lines bytes.Buffer
	page.WriteString(`{"current":"master","commits":[`)
	fmt.Fprintf(&lines, `{"count":10000,"current":"master"}`+"\n")
	for i := range 10000 {
		rec := fmt.Sprintf(`{"id":"%032x","dot":"cdbeff6c0d2e4b7f","branch":"master","parent":"%032x","author":"admin","time":"2026-12-05T17:05:22.971971138Z","message":"%d","info":{"added_bytes":"0","consistency":"file-by-file","dirs":"0","files":"0","subdots":"1"}}`, 10000-i, 9999-i, i) // newest first
		if i > 0 {
			page.WriteByte(',')
		}
		page.WriteString(rec)
		lines.WriteString(rec + "\n")
	}
	page.WriteString("]}\n")
	each := func(*api.HistoryPage, *dotmesh.Commit) error { return nil }
	for _, tc := range []struct {
		name string
		body []byte
		ct   string
	}{{"json", page.Bytes(), "application/json"}, {"lines", lines.Bytes(), api.HistoryLines}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				h := historyAnswer{page: &api.HistoryPage{}, keep: consistencyKey, each: each}
				if err := h.decodeTypedAnswer(tc.ct, bytes.NewReader(tc.body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
