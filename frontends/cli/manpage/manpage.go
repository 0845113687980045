// Package manpage writes dm's man pages from its cobra command tree
// (`dm docs man`). It is apart from package cli so that the light dm,
// which hands that command to dm-node, links no Markdown renderer:
// cobra/doc's blackfriday and md2man cost every dm process their
// package init.
package manpage

import (
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Write writes a man page (section 1) for root and each of its commands
// into dir, which must exist; source is the pages' footer
// ("dotmesh VERSION").
func Write(root *cobra.Command, source, dir string) error {
	// The generated pages would otherwise name today's date, so two
	// builds of one version differ.
	root.DisableAutoGenTag = true
	return doc.GenManTree(root, &doc.GenManHeader{Section: "1", Source: source, Manual: "dotmesh manual"}, dir)
}
