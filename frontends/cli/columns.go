package cli

import (
	"strings"
	"sync"

	"github.com/spf13/cobra"
)

// scriptingOutput is what a command prints with -H: what one line is and
// its tab-separated columns in order, and any other form of its output.
type scriptingOutput struct {
	line string
	cols []string
	also string
}

// scriptingColumns documents the -H output of every command that has
// one; documentScripting adds it to each command's help, and
// TestScriptingColumnsDocumented checks it against real output. Built
// when help is shown, not at every dm's start.
var scriptingColumns = sync.OnceValue(func() map[string]scriptingOutput {
	return map[string]scriptingOutput{
		"dm init":     {line: "one line", cols: []string{"ID (the new dot's)"}},
		"dm list":     {line: "one line per dot", cols: []string{"DOT", "BRANCH", "SIZE (bytes)", "COMMITS", "DIRTY (yes/no)", "CURRENT (yes/no)"}, also: "Of a bucket remote, one line per branch: DOT, BRANCH, HEAD, COMMITS, SIZE (bytes), UPDATED (RFC 3339)."},
		"dm dot show": {line: "one line per field", cols: []string{"FIELD (dot, id, backend, branch, branches, head, commits, size, dirty, subdots, used by, ...)", "VALUE"}},
		"dm commit":   {line: "one line", cols: []string{"ID (the new commit's)"}},
		"dm log":      {line: "one line per commit, newest first", cols: []string{"ID", "AUTHOR", "TIME (RFC 3339)", "MESSAGE (its first line)", "METADATA (KEY=VALUE, space-separated)"}},
		"dm reset":    {line: "one line", cols: []string{"ID (the commit HEAD is now at)"}},
		"dm branch":   {line: "one line per branch", cols: []string{"BRANCH", "HEAD", "CURRENT (yes/no)"}, also: "Making a branch prints nothing."},
		"dm tag":      {line: "one line per tag", cols: []string{"TAG", "COMMIT", "AUTHOR", "CREATED (RFC 3339)", "MESSAGE (its first line)"}, also: "Tagging prints the tagged commit's ID."},
		"dm status": {line: "one line per change, its first column its kind", cols: []string{"KIND (file, database or table)", "SUBDOT", "the kind's fields"},
			also: "file: CHANGE (A, M, D...), PATH, OLD SIZE, NEW SIZE (bytes); database: DATABASE KIND, STATE (changed/unchanged); table: TABLE, INSERTED, DELETED, UPDATED (rows)."},
		"dm diff":            {line: "with --stat, one line per file", cols: []string{"OLD SIZE (bytes; with --lines, INSERTIONS)", "NEW SIZE (bytes; with --lines, DELETIONS)", "PATH"}, also: "Databases follow, their lines starting with database or table. Without --stat, -H changes nothing."},
		"dm show":            {line: "with --stat, one line per file", cols: []string{"OLD SIZE (bytes; with --lines, INSERTIONS)", "NEW SIZE (bytes; with --lines, DELETIONS)", "PATH"}, also: "Databases follow, their lines starting with database or table. Without --stat, -H changes nothing."},
		"dm push":            {line: "one line", cols: []string{"DOT", "BRANCH", "HEAD", "COMMITS (sent)", "BYTES (sent)", "DURATION (ms)"}},
		"dm pull":            {line: "one line", cols: []string{"DOT", "BRANCH", "HEAD", "COMMITS (received)", "BYTES (received)", "DURATION (ms)"}},
		"dm clone":           {line: "one line", cols: []string{"DOT", "BRANCH", "HEAD", "COMMITS (received)", "BYTES (received)", "DURATION (ms)"}},
		"dm transfers":       {line: "one line per incoming transfer", cols: []string{"DOT", "BRANCH", "NEW (yes/no)", "RECEIVED (bytes)", "COMMITS", "LAST BYTE (RFC 3339)", "EXPIRES (RFC 3339)", "ACTIVE (yes/no)"}},
		"dm transfers abort": {line: "one line", cols: []string{"ABORTED (transfers)", "OBJECTS REMOVED", "BYTES REMOVED"}},
		"dm gc":              {line: "one line", cols: []string{"COMMITS REMOVED", "OBJECTS REMOVED", "BYTES REMOVED"}, also: "Of a bucket remote: COMMITS, BLOBS, BYTES (removed), UNFINISHED (pushes cleaned up)."},
		"dm policy show":     {line: "one line per policy", cols: []string{"POLICY", "EVERY", "KEEP", "SET BY", "SET (RFC 3339)"}, also: "With DOT, one line per field: FIELD (dot, branch, policy, every, keep, set by, last run, next run), VALUE."},
		"dm policy prune":    {line: "one line", cols: []string{"COMMITS REMOVED", "OBJECTS REMOVED", "BYTES REMOVED"}},
		"dm remote":          {line: "one line per remote", cols: []string{"NAME", "CURRENT (yes/no)"}, also: "With -v: NAME, WHERE (USER@HOST:PORT or the bucket's URL), CURRENT."},
		"dm remote key add":  {line: "one line", cols: []string{"ID (the new key's)"}},
		"dm remote key list": {line: "one line per key", cols: []string{"ID", "CREATED (RFC 3339)", "KDF", "IN USE (yes/no: opened this time)"}},
		"dm cluster nodes":   {line: "one line per node", cols: []string{"THIS (* for the node dm talks to)", "NODE", "ALIVE (yes/no)", "ADDRESS", "VERSION", "STARTED"}},
		"dm source list":     {line: "one line per source", cols: []string{"SUBDOT", "KIND", "STATE", "URL"}},
		"dm user add":        {line: "one line", cols: []string{"KEY (the new user's secret API key)"}},
		"dm user list":       {line: "one line per user", cols: []string{"USER", "ADMIN (yes/no)", "CREATED (RFC 3339)"}},
		"dm key add":         {line: "one line", cols: []string{"KEY (the new secret API key)"}},
		"dm key list":        {line: "one line per key", cols: []string{"ID", "LABEL", "KIND", "CREATED (RFC 3339)"}},
		"dm whoami":          {line: "one line per field", cols: []string{"FIELD (Remote:, User:, Admin:, Key:)", "VALUE"}},
		"dm dot sharing":     {line: "one line per fact, its first column its kind", cols: []string{"KIND (owner, visibility or grant)", "the kind's fields"}, also: "owner: USER; visibility: public/private; grant: USER, ROLE, BY (who granted it), CREATED (RFC 3339)."},
		"dm audit":           {line: "one line per record, newest first", cols: []string{"TIME (RFC 3339)", "USER", "ACTION", "DOT", "BRANCH", "COMMIT", "DETAIL", "ID"}},
		"dm version":         {line: "one line per program", cols: []string{"WHICH (client, server)", "VERSION"}},
	}
})

// documentScripting appends each command's -H columns to its help.
func documentScripting(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if o, ok := scriptingColumns()[c.CommandPath()]; ok {
			c.Long = strings.TrimRight(c.Long, "\n") + "\n\n" + o.help()
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// help is the paragraph: "-H prints LINE, tab-separated: COLS."
func (o scriptingOutput) help() string {
	s := "-H prints " + o.line + ", tab-separated: " + strings.Join(o.cols, ", ") + "."
	if o.also != "" {
		s += " " + o.also
	}
	// Wrapped as the hand-written help is.
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(s) {
		if n > 0 && n+1+len(w) > 76 {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
