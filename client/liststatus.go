package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// ListDotsTable is ListDots without each dot's head commit and branch
// names (Head and Branches stay empty): what a table of dots shows. The
// heads' Info maps were most of what decoding 1,001 dots allocated.
func (c *Client) ListDotsTable(ctx context.Context) ([]dotmesh.DotStatus, error) {
	var out []dotmesh.DotStatus
	if err := c.do(ctx, http.MethodGet, "/v1/dots", nil, nil, v2Answer{out: &out, opts: []jsonv2.Options{skipTableFields}}); err != nil {
		return nil, err
	}
	return out, nil
}

// ListDotsTableIncoming is ListDotsTable with the node's unfinished
// incoming transfers (IncomingTransfers), which a listing for people
// shows below its table: one request to a node that answers
// api.ListTableHeader, two to one that predates it.
func (c *Client) ListDotsTableIncoming(ctx context.Context) ([]dotmesh.DotStatus, []dotmesh.IncomingTransfer, error) {
	var out api.DotList
	hdr := http.Header{api.ListTableHeader: {"1"}}
	ans := dotListAnswer{out: &out}
	if err := c.call(ctx, nil, http.MethodGet, "/v1/dots", nil, hdr, nil, &ans); err != nil {
		return nil, nil, err
	}
	if !ans.combined { // an older node: the dots alone
		// The transfers are a note below the table: none when they
		// cannot be read, as the node that answers both does.
		out.Incoming, _ = c.IncomingTransfers(ctx)
	}
	return out.Dots, out.Incoming, nil
}

// dotListAnswer decodes an api.DotList, or the plain array of dots that
// a node without api.ListTableHeader sends (combined stays false),
// skipping the dots' heads and branches (ListDotsTable).
type dotListAnswer struct {
	out      *api.DotList
	combined bool
}

func (a *dotListAnswer) decodeAnswer(body io.Reader) error {
	dec := jsontext.NewDecoder(body)
	var err error
	if dec.PeekKind() == '[' {
		err = jsonv2.UnmarshalDecode(dec, &a.out.Dots, skipTableFields)
	} else {
		a.combined = true
		err = jsonv2.UnmarshalDecode(dec, a.out, skipTableFields)
	}
	if err != nil {
		return err
	}
	if _, err := dec.ReadToken(); err != io.EOF { // only the end may follow
		return fmt.Errorf("more follows a dot list (%v)", err)
	}
	return nil
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
