package dotmesh

import (
	"bytes"
	"unicode/utf8"
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
