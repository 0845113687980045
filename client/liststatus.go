package client

import (
	"context"
	"fmt"
	"io"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// ListDotsTable is ListDots with only what a table of dots shows: each
// dot's namespace, name and labels, its current branch's name, usage
// (size, dirty) and history length, its mounts and usage error (asked as
// api.DotTable rows; from an older node, the other fields but Head and
// Branches may be filled too). The heads' Info maps, then the fields no
// table shows, were most of what decoding 1,001 dots cost.
func (c *Client) ListDotsTable(ctx context.Context) ([]dotmesh.DotStatus, error) {
	dots, _, err := c.ListDotsTableIncoming(ctx)
	return dots, err
}

// ListDotsTableIncoming is ListDotsTable with the node's unfinished
// incoming transfers (IncomingTransfers), which a listing for people
// shows below its table: one request to a node that answers
// api.ListTableHeader, two to one that predates it.
func (c *Client) ListDotsTableIncoming(ctx context.Context) ([]dotmesh.DotStatus, []dotmesh.IncomingTransfer, error) {
	hdr := header{api.ListTableHeader: {api.ListTableRows}}
	var ans dotListAnswer
	if err := c.call(ctx, nil, methodGet, "/v1/dots", nil, hdr, nil, &ans); err != nil {
		return nil, nil, err
	}
	if !ans.combined { // an older node: the dots alone
		// The transfers are a note below the table: none when they
		// cannot be read, as the node that answers both does.
		ans.incoming, _ = c.IncomingTransfers(ctx)
	}
	return ans.dots, ans.incoming, nil
}

// dotListAnswer decodes an api.DotTable, an api.DotList (a node that
// knows only ListTableHeader "1"), or the plain array of dots that a
// node without api.ListTableHeader sends (combined stays false),
// skipping the dots' heads and branches (ListDotsTable).
type dotListAnswer struct {
	dots     []dotmesh.DotStatus
	incoming []dotmesh.IncomingTransfer
	combined bool
}

func (a *dotListAnswer) decodeAnswer(body io.Reader) error {
	dec := jsontext.NewDecoder(body)
	var err error
	if dec.PeekKind() == '[' {
		err = jsonv2.UnmarshalDecode(dec, &a.dots, skipTableFields)
	} else {
		a.combined = true
		err = a.decodeObject(dec)
	}
	if err != nil {
		return err
	}
	if _, err := dec.ReadToken(); err != io.EOF { // only the end may follow
		return fmt.Errorf("more follows a dot list (%v)", err)
	}
	return nil
}

// decodeObject decodes an api.DotTable or api.DotList (not both).
func (a *dotListAnswer) decodeObject(dec *jsontext.Decoder) error {
	if null, err := openObject(dec, "a dot list"); err != nil || null {
		return err
	}
	var seen string // "rows" or "dots"
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		var field string // for the error; tok is void after the next read
		switch name := tok.String(); name {
		case "rows", "dots":
			if seen != "" && seen != name {
				return fmt.Errorf("a dot list with both dots and rows")
			}
			seen = name
		}
		switch tok.String() {
		case "rows":
			var rows []api.DotRow
			if rows, err = decodeRows(dec); err == nil {
				a.dots = rowStatuses(rows)
			}
			field = "rows"
		case "dots":
			field, err = "dots", jsonv2.UnmarshalDecode(dec, &a.dots, skipTableFields)
		case "incoming":
			field, err = "incoming", jsonv2.UnmarshalDecode(dec, &a.incoming)
		default: // what a newer node adds
			field, err = "skipped", dec.SkipValue()
		}
		if err != nil {
			return fmt.Errorf("dot list field %s: %w", field, err)
		}
	}
	_, err := dec.ReadToken() // '}'
	return err
}

// rowStatuses are rows as the DotStatus values ListDotsTable returns.
func rowStatuses(rows []api.DotRow) []dotmesh.DotStatus {
	if rows == nil {
		return nil
	}
	out := make([]dotmesh.DotStatus, len(rows))
	dots := make([]dotmesh.Dot, len(rows))
	branches := make([]dotmesh.Branch, len(rows))
	for i, r := range rows {
		dots[i] = dotmesh.Dot{Namespace: r.Namespace, Name: r.Name, Labels: r.Labels}
		branches[i] = dotmesh.Branch{Name: r.Branch}
		out[i] = dotmesh.DotStatus{Dot: &dots[i], Branch: &branches[i], Usage: dotmesh.Usage{Size: r.Size, Dirty: r.Dirty},
			Commits: r.Commits, Mounts: r.Mounts, Error: r.Error}
	}
	return out
}

// skipTableFields skips DotStatus's head and branches.
var skipTableFields = jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, st *dotmesh.DotStatus) error {
	return decodeTableStatus(dec, st)
}))

// decodeTableStatus decodes a DotStatus object as the JSON v2 decoder
// would, but skips its head and branches (ListDotsTable).
func decodeTableStatus(dec *jsontext.Decoder, st *dotmesh.DotStatus) error {
	if null, err := openObject(dec, "a dot's status"); err != nil || null {
		return err
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		var field string // for the error; tok is void after the next read
		switch tok.String() {
		case "dot":
			field, err = "dot", jsonv2.UnmarshalDecode(dec, &st.Dot)
		case "branch":
			field, err = "branch", jsonv2.UnmarshalDecode(dec, &st.Branch)
		case "usage":
			field, err = "usage", jsonv2.UnmarshalDecode(dec, &st.Usage)
		case "commits":
			field, err = "commits", jsonv2.UnmarshalDecode(dec, &st.Commits)
		case "mounts":
			field, err = "mounts", jsonv2.UnmarshalDecode(dec, &st.Mounts)
		case "error":
			field, err = "error", jsonv2.UnmarshalDecode(dec, &st.Error)
		default: // head, branches, and what a newer node adds
			field, err = "skipped", dec.SkipValue()
		}
		if err != nil {
			return fmt.Errorf("dot status field %s: %w", field, err)
		}
	}
	_, err := dec.ReadToken() // '}'
	return err
}
