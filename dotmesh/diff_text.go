package dotmesh

import (
	"bytes"
	"strings"
	"unicode/utf8"

	udiff "github.com/aymanbagabas/go-udiff"
)

// binarySniff is how much of a file decides text or binary, as git does.
const binarySniff = 8 << 10

// maxPatchInput bounds the bytes of one side of a file that a patch is
// made from; bigger files get no patch (PatchTruncated) and no line counts.
const maxPatchInput = 16 << 20

// isBinary says whether data (a file's first bytes) is not text: a NUL
// byte or invalid UTF-8 in its first binarySniff bytes. A character cut
// at the end of the sniffed part does not count as invalid.
func isBinary(data []byte) bool {
	if len(data) > binarySniff {
		data = data[:binarySniff]
		for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
			if utf8.RuneStart(data[i]) {
				if !utf8.FullRune(data[i:]) {
					data = data[:i]
				}
				break
			}
		}
	}
	return bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data)
}

// filePatch is the unified diff of one text file.
type filePatch struct {
	text                  string
	insertions, deletions int
	truncated             bool
}

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
