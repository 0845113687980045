package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The Client offers the optional have/want exchange too.
var _ dotmesh.ObjectTransport = (*Client)(nil)

// CommitObjects implements dotmesh.ObjectTransport: the list comes in
// pages, each checked; the whole is checked against its digest.
func (c *Client) CommitObjects(ctx context.Context, dot dotmesh.DotName, id dotmesh.CommitID, base *dotmesh.CommitID, format string) (*dotmesh.ObjectList, error) {
	p, err := c.dotPath(dot, "transfer", "commits", string(id), "objects")
	if err != nil {
		return nil, err
	}
	var list dotmesh.ObjectList
	for {
		q := url.Values{"format": {format}, "offset": {strconv.Itoa(len(list.IDs))}}
		if base != nil {
			q.Set("base", string(*base))
		}
		var page api.ObjectsPage
		if err := c.doTransfer(ctx, methodGet, p, q, nil, nil, &page); err != nil {
			return nil, err
		}
		if err := checkPage(&page, &list); err != nil {
			return nil, fmt.Errorf("%w: the object list of commit %s from %s: %v", dotmesh.ErrCorrupt, id, c.base.Redacted(), err)
		}
		list.IDs = append(list.IDs, page.IDs...)
		list.Digest = page.Digest
		if len(list.IDs) == page.Total {
			break
		}
	}
	if dotmesh.ObjectListDigest(list.IDs) != list.Digest {
		return nil, fmt.Errorf("%w: the object list of commit %s from %s does not match its digest", dotmesh.ErrCorrupt, id, c.base.Redacted())
	}
	return &list, nil
}

// checkPage checks a page from a peer against what came before.
func checkPage(page *api.ObjectsPage, sofar *dotmesh.ObjectList) error {
	switch {
	case page.Total < 0 || page.Total > dotmesh.MaxObjectList:
		return fmt.Errorf("it claims %d objects, over the %d limit", page.Total, dotmesh.MaxObjectList)
	case page.Offset != len(sofar.IDs):
		return fmt.Errorf("a page starts at %d, not %d", page.Offset, len(sofar.IDs))
	case len(page.IDs) > dotmesh.MaxObjectBatch:
		return fmt.Errorf("a page has %d ids, over the %d limit", len(page.IDs), dotmesh.MaxObjectBatch)
	case len(page.IDs) == 0 && page.Offset < page.Total:
		return fmt.Errorf("an empty page at %d of %d", page.Offset, page.Total)
	case page.Offset+len(page.IDs) > page.Total:
		return fmt.Errorf("pages run past the %d objects claimed", page.Total)
	case sofar.Digest != "" && page.Digest != sofar.Digest:
		return fmt.Errorf("the list changed between pages")
	}
	for _, id := range page.IDs {
		if err := dotmesh.ValidateObjectID(id); err != nil {
			return err
		}
	}
	return nil
}

// HaveObjects implements dotmesh.ObjectTransport.
func (c *Client) HaveObjects(ctx context.Context, dot dotmesh.DotName, branch string, cm dotmesh.CommitID, format string, ids []dotmesh.ObjectID) ([]bool, error) {
	if len(ids) > dotmesh.MaxObjectBatch {
		return nil, fmt.Errorf("%w: %d object ids in one request; the limit is %d", dotmesh.ErrInvalidArgument, len(ids), dotmesh.MaxObjectBatch)
	}
	p, err := c.dotPath(dot, "transfer", "have")
	if err != nil {
		return nil, err
	}
	var res api.HaveResponse
	if err := c.doTransfer(ctx, methodPost, p, url.Values{"branch": {branch}}, nil, api.HaveRequest{Commit: cm, Format: format, IDs: ids}, &res); err != nil {
		return nil, err
	}
	f := dotmesh.ObjectFilter{Count: len(ids), Have: res.Have}
	if len(res.Have) != (len(ids)+7)/8 || (len(ids)%8 != 0 && res.Have[len(res.Have)-1]>>(len(ids)%8) != 0) {
		return nil, fmt.Errorf("%w: %s answered which objects it holds with a %d-byte bitmap for %d objects", dotmesh.ErrCorrupt, c.base.Redacted(), len(res.Have), len(ids))
	}
	have := make([]bool, len(ids))
	for i := range have {
		have[i] = f.Held(i)
	}
	return have, nil
}

// FetchCommitWithout implements dotmesh.ObjectTransport.
func (c *Client) FetchCommitWithout(ctx context.Context, dot dotmesh.DotName, id dotmesh.CommitID, base *dotmesh.CommitID, format string, f *dotmesh.ObjectFilter) (io.ReadCloser, error) {
	p, err := c.dotPath(dot, "transfer", "commits", string(id), "fetch")
	if err != nil {
		return nil, err
	}
	body, err := jsonBody(api.FetchRequest{Format: format, Base: base, Filter: f})
	if err != nil {
		return nil, err
	}
	return c.stream(ctx, methodPost, p, nil, body, "application/json")
}

func jsonBody(v any) (io.Reader, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	return bytes.NewReader(data), nil
}
