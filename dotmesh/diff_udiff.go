//go:build !dmlight

package dotmesh

import (
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
)

// unifiedPatch diffs old and new text of path p (nil for a side that has
// no file: /dev/null, as git names it), with context lines around each
// change, keeping at most maxBytes of patch text (cut at a line end).
func unifiedPatch(p string, old, new []byte, hasOld, hasNew bool, context, maxBytes int) (filePatch, error) {
	from, to := "a/"+p, "b/"+p
	if !hasOld {
		from = "/dev/null"
	}
	if !hasNew {
		to = "/dev/null"
	}
	before, after := string(old), string(new)
	u, err := udiff.ToUnifiedDiff(from, to, before, udiff.Lines(before, after), context)
	if err != nil {
		return filePatch{}, err
	}
	var fp filePatch
	for _, h := range u.Hunks {
		for _, l := range h.Lines {
			switch l.Kind {
			case udiff.Insert:
				fp.insertions++
			case udiff.Delete:
				fp.deletions++
			}
		}
	}
	fp.text = u.String()
	if len(fp.text) > maxBytes {
		cut := strings.LastIndexByte(fp.text[:maxBytes], '\n') + 1
		fp.text, fp.truncated = fp.text[:cut], true
	}
	return fp, nil
}
