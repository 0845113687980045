package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// table prints rows either for people (a header, aligned columns) or, in
// scripting mode (-H), as tab-separated fields without a header.
type table struct {
	header    []string
	rows      [][]string
	scripting bool
}

func (t *table) add(fields ...string) { t.rows = append(t.rows, fields) }

func (t *table) write(out io.Writer) error {
	// Buffered: a table of a thousand dots is not a write per cell.
	w := bufio.NewWriter(out)
	if err := t.writeTo(w); err != nil {
		return err
	}
	return w.Flush()
}

func (t *table) writeTo(w io.Writer) error {
	if t.scripting {
		for _, r := range t.rows {
			clean := make([]string, len(r))
			for i, f := range r {
				clean[i] = scriptField(f)
			}
			if _, err := fmt.Fprintln(w, strings.Join(clean, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	clean := make([][]string, len(t.rows))
	for i, r := range t.rows {
		clean[i] = make([]string, len(r))
		for j, f := range r {
			clean[i][j] = printable(f)
		}
	}
	if ok, err := writeAligned(w, t.header, clean); ok {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if t.header != nil {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		clean := make([]string, len(r))
		for i, f := range r {
			clean[i] = printable(f)
		}
		fmt.Fprintln(tw, strings.Join(clean, "\t"))
	}
	return tw.Flush()
}

// scriptField keeps one field on one line and free of the separator.
func scriptField(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// printable replaces control characters, so that user-supplied text
// (messages, metadata) cannot move the cursor or break a table.
func printable(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ { // no rune decoding for a plain ASCII line
		clean = s[i] >= 0x20 && s[i] < 0x7f // ASCII: strings.Map also mends invalid UTF-8
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// HumanSize renders a byte count with binary units: 0 B, 512 B, 1.5 KiB,
// 12 MiB. One decimal below ten units, none above.
func HumanSize(n int64) string {
	if n < 0 {
		return "-" + HumanSize(-n)
	}
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / unit
	i := 0
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	var s string
	if v < 10 {
		s = strconv.FormatFloat(v, 'f', 1, 64)
		s = strings.TrimSuffix(s, ".0")
	} else {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if s == "1024" && i < len(units)-1 { // 1023.9 KiB rounds to 1 MiB
		s, i = "1", i+1
	}
	return s + " " + units[i]
}

// size renders a byte count for the output mode: exact bytes for scripts,
// human units for people.
func (a *app) size(n int64) string {
	if a.scripting {
		return strconv.FormatInt(n, 10)
	}
	return HumanSize(n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// shortID abbreviates a commit id for people, like git does.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// firstLine returns the first line of a message.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// out returns the writer for results.
func (a *app) out() io.Writer { return a.io.Stdout }

// info prints a confirmation for people; silent in -H and --json modes,
// where only the result is printed.
func (a *app) info(format string, args ...any) {
	if a.scripting || a.jsonOut {
		return
	}
	fmt.Fprintf(a.io.Stdout, format+"\n", args...)
}
