package web

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestCommitPageShowsTheDiffAndChangesPageTheWorkingState: the commit
// page has what dm show has (the patch of a text file, escaped), the
// first commit and one whose parent gc removed show all as added, and the changes page lists the
// uncommitted paths of the branch, or says it is clean.
func TestCommitPageShowsTheDiffAndChangesPageTheWorkingState(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	bob := h.addUser("bob")
	dot := dotmesh.DotName{Namespace: "alice", Name: "app"}
	first := h.commitFiles(dot, "first", map[string]string{"notes.txt": "one\ntwo\nthree\n", "gone.txt": "x"})
	p, err := h.node.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: dot})
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(p, "gone.txt")))
	c := h.commitFiles(dot, "second", map[string]string{"notes.txt": "one\n<b>2</b>\nthree\n"})
	b := h.browser()
	b.mustSignIn("alice", alice)

	cp := b.get("/ui/dots/alice/app/commits/" + string(c.ID))
	require.Equal(t, http.StatusOK, cp.status, cp.body)
	for _, want := range []string{`<span class="del">-two</span>`, `<span class="add">&#43;&lt;b&gt;2&lt;/b&gt;</span>`, `<span class="hunk">@@ -1,3 &#43;1,3 @@</span>`,
		"notes.txt", "gone.txt", `<span class="tag removed">removed</span>`, "1 modified · 1 removed"} {
		require.Contains(t, cp.body, want)
	}
	require.NotContains(t, cp.body, "<b>2</b>")
	fp := b.get("/ui/dots/alice/app/commits/" + string(first.ID))
	require.Equal(t, http.StatusOK, fp.status, fp.body)
	require.Contains(t, fp.body, `<span class="tag added">added</span>`)
	require.Contains(t, fp.body, "gone.txt")
	// The one Diff against an empty tree: patches too, as dm show has them.
	require.Contains(t, fp.body, `<span class="add">&#43;two</span>`)
	require.Contains(t, fp.body, `<span class="hunk">@@ -0,0 &#43;1,3 @@</span>`)

	dp := b.get("/ui/dots/alice/app")
	require.Contains(t, dp.body, `href="/ui/dots/alice/app/changes?branch=master"`)
	clean := b.get("/ui/dots/alice/app/changes?branch=master")
	require.Equal(t, http.StatusOK, clean.status, clean.body)
	require.Contains(t, clean.body, "Nothing to commit, working state clean.")

	require.NoError(t, os.WriteFile(filepath.Join(p, "new.txt"), []byte("new"), 0o644))
	ch := b.get("/ui/dots/alice/app/changes")
	require.Equal(t, http.StatusOK, ch.status, ch.body)
	require.Contains(t, ch.body, "new.txt")
	require.Contains(t, ch.body, `<span class="tag added">added</span>`)
	require.NotContains(t, ch.body, "working state clean")
	require.Equal(t, http.StatusOK, b.get("/ui/dots/alice/app/changes?rows=1").status)

	for _, bad := range []string{"?rows=2", "?branch=a.b", "?rows=1&rows=1"} {
		require.Equal(t, http.StatusBadRequest, b.get("/ui/dots/alice/app/changes"+bad).status, bad)
	}
	require.Equal(t, http.StatusNotFound, b.get("/ui/dots/alice/app/changes?branch=nope").status)
	// A commit whose parent gc removed: everything in it shows as added.
	_, err = h.node.GC(context.Background(), dotmesh.GCOptions{Dot: &dot, Keep: 1})
	require.NoError(t, err)
	pp := b.get("/ui/dots/alice/app/commits/" + string(c.ID))
	require.Equal(t, http.StatusOK, pp.status, pp.body)
	require.Contains(t, pp.body, `<span class="add">&#43;&lt;b&gt;2&lt;/b&gt;</span>`)
	require.NotContains(t, pp.body, `<span class="del">-two</span>`)
	require.NotContains(t, pp.body, "gone.txt")

	// Without the read role the dot's changes are hidden like the dot.
	bb := h.browser()
	bb.mustSignIn("bob", bob)
	require.Equal(t, http.StatusNotFound, bb.get("/ui/dots/alice/app/changes").status)
	require.Equal(t, http.StatusNotFound, bb.get("/ui/dots/alice/app/commits/"+string(c.ID)).status)
}
