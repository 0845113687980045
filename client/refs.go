package client

import (
	"context"
	"fmt"
	"io"
	"mime"
	"strconv"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Tags lists a dot's tags, by name.
func (c *Client) Tags(ctx context.Context, dot dotmesh.DotName) ([]dotmesh.Tag, error) {
	p, err := c.dotPath(dot, "tags")
	if err != nil {
		return nil, err
	}
	var out []dotmesh.Tag
	if err := c.do(ctx, methodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateTag tags a commit (req.Ref, empty: HEAD of req.Branch). The
// author is the client's user.
func (c *Client) CreateTag(ctx context.Context, dot dotmesh.DotName, req api.TagRequest) (*dotmesh.Tag, error) {
	if err := dotmesh.ValidateNewName("tag", req.Name); err != nil {
		return nil, err
	}
	if req.Ref != "" {
		if _, err := dotmesh.ParseRef(req.Ref); err != nil {
			return nil, err
		}
	}
	p, err := c.dotPath(dot, "tags")
	if err != nil {
		return nil, err
	}
	var out dotmesh.Tag
	if err := c.do(ctx, methodPost, p, nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteTag removes a tag (not the commit).
func (c *Client) DeleteTag(ctx context.Context, dot dotmesh.DotName, name string) error {
	if err := dotmesh.ValidateName("tag", name); err != nil {
		return err
	}
	p, err := c.dotPath(dot, "tags", name)
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, nil, nil, nil)
}

// RenameBranch renames a branch.
func (c *Client) RenameBranch(ctx context.Context, dot dotmesh.DotName, oldName, newName string) (*dotmesh.Branch, error) {
	if err := dotmesh.ValidateName("branch", oldName); err != nil {
		return nil, err
	}
	if err := dotmesh.ValidateNewName("branch", newName); err != nil {
		return nil, err
	}
	p, err := c.dotPath(dot, "branches", oldName, "rename")
	if err != nil {
		return nil, err
	}
	var out dotmesh.Branch
	if err := c.do(ctx, methodPost, p, nil, api.RenameBranchRequest{Name: newName}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// History returns a page of the history of ref (empty: HEAD of branch,
// empty: the current branch), newest first, with the branches and tags
// at its commits; limit <= 0 means all.
func (c *Client) History(ctx context.Context, dot dotmesh.DotName, branch, ref string, skip, limit int) (*api.HistoryPage, error) {
	return c.historyAnswer(ctx, dot, branch, ref, skip, limit, historyAnswer{})
}

// HistoryInfo is History keeping of each commit's Info only the keys keep
// accepts: a log printed for people shows a few of a dozen, and decoding
// the others into a map per commit was a quarter of `dm log`'s time.
// Commits whose kept Info is equal share one map: do not change it.
func (c *Client) HistoryInfo(ctx context.Context, dot dotmesh.DotName, branch, ref string, skip, limit int, keep func(key string) bool) (*api.HistoryPage, error) {
	return c.historyAnswer(ctx, dot, branch, ref, skip, limit, historyAnswer{keep: keep})
}

// HistoryEach is HistoryInfo handing each commit to each as it is
// decoded instead of keeping the page's commits: a log prints a long
// history as it arrives, in the memory of one commit. page has More,
// Refs and Current, which a node sends before the commits; from a node
// that sends them after, the commits are kept until the answer ends. each
// must not keep c, which the next commit overwrites. An error of each
// ends the call and is returned as it is.
func (c *Client) HistoryEach(ctx context.Context, dot dotmesh.DotName, branch, ref string, skip, limit int, keep func(key string) bool, each func(page *api.HistoryPage, c *dotmesh.Commit) error) (*api.HistoryPage, error) {
	var eachErr error
	page, err := c.historyAnswer(ctx, dot, branch, ref, skip, limit, historyAnswer{keep: keep, each: func(p *api.HistoryPage, c *dotmesh.Commit) error {
		eachErr = each(p, c)
		return eachErr
	}})
	if eachErr != nil {
		return nil, eachErr
	}
	return page, err
}

func (c *Client) historyAnswer(ctx context.Context, dot dotmesh.DotName, branch, ref string, skip, limit int, h historyAnswer) (*api.HistoryPage, error) {
	if ref != "" {
		if _, err := dotmesh.ParseRef(ref); err != nil {
			return nil, err
		}
	}
	p, err := c.dotPath(dot, "history")
	if err != nil {
		return nil, err
	}
	q := branchQuery(branch)
	if ref != "" {
		q.Set("ref", ref)
	}
	if skip > 0 {
		q.Set("skip", strconv.Itoa(skip))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.HistoryPage
	h.page = &out
	if err := c.call(ctx, nil, methodGet, p, q, historyAccept, nil, h); err != nil {
		return nil, err
	}
	return &out, nil
}

// v2Answer decodes an answer into out with the JSON v2 decoder, as
// historyAnswer does: a list of 1,001 dots took a quarter of `dm list`'s
// CPU with encoding/json's Decoder.
type v2Answer struct {
	out  any
	opts []jsonv2.Options
}

func (a v2Answer) decodeAnswer(body io.Reader) error {
	return jsonv2.UnmarshalRead(body, a.out, a.opts...)
}

// historyAnswer decodes a history page with the JSON v2 decoder
// (github.com/go-json-experiment/json): a page of 10,000 commits (5 MB)
// took some 40% less CPU than encoding/json's Decoder, which reads the
// value once to find its end and again to decode it (measured on dm log
// of the bench's history). Its defaults are stricter than encoding/json
// (field names by case, no duplicate names, valid UTF-8), which a node's
// answer, written by encoding/json, always meets. With keep, each
// commit's Info keeps only the keys keep accepts.
type historyAnswer struct {
	page *api.HistoryPage
	keep func(key string) bool
	each func(*api.HistoryPage, *dotmesh.Commit) error // nil: keep the commits in page
}

// historyAccept asks for a history page as lines, which a node older
// than api.HistoryLines answers as JSON.
var historyAccept = header{"Accept": {api.HistoryLines + ", application/json;q=0.5"}}

func (h historyAnswer) decodeTypedAnswer(contentType string, body io.Reader) error {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == api.HistoryLines {
		return h.decodeLines(body)
	}
	return h.decodeAnswer(body)
}

func (h historyAnswer) decodeAnswer(body io.Reader) error {
	var ik *infoKeys
	if h.keep != nil {
		ik = &infoKeys{keep: h.keep}
	}
	if h.each == nil {
		var opts []jsonv2.Options
		if ik != nil {
			opts = append(opts, jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(
				func(dec *jsontext.Decoder, c *dotmesh.Commit) error { return ik.decodeCommit(dec, c) })))
		}
		return jsonv2.UnmarshalRead(body, h.page, opts...)
	}
	return h.decodeEach(jsontext.NewDecoder(body), ik)
}

// decodeEach reads a HistoryPage, handing each commit to h.each as it is
// decoded once Current has been read (a node sends More, Refs and Current
// first), else at the end.
// With ik, each commit keeps of its Info what ik keeps.
func (h historyAnswer) decodeEach(dec *jsontext.Decoder, ik *infoKeys) error {
	if tok, err := dec.ReadToken(); err != nil {
		return err
	} else if tok.Kind() != '{' {
		return fmt.Errorf("a history page is a JSON %v, not an object", tok.Kind())
	}
	var held []dotmesh.Commit
	var c dotmesh.Commit
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		switch tok.String() {
		case "more":
			err = jsonv2.UnmarshalDecode(dec, &h.page.More)
		case "refs":
			err = jsonv2.UnmarshalDecode(dec, &h.page.Refs)
		case "current":
			err = jsonv2.UnmarshalDecode(dec, &h.page.Current)
		case "commits":
			err = h.decodeCommits(dec, ik, &c, &held)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return err
	}
	for i := range held {
		if err := h.each(h.page, &held[i]); err != nil {
			return err
		}
	}
	return nil
}

func (h historyAnswer) decodeCommits(dec *jsontext.Decoder, ik *infoKeys, c *dotmesh.Commit, held *[]dotmesh.Commit) error {
	tok, err := dec.ReadToken()
	if err != nil || tok.Kind() == 'n' {
		return err
	}
	if tok.Kind() != '[' {
		return fmt.Errorf("a history page's commits are a JSON %v, not an array", tok.Kind())
	}
	for dec.PeekKind() != ']' {
		*c = dotmesh.Commit{}
		if ik != nil {
			err = ik.decodeCommit(dec, c)
		} else {
			err = jsonv2.UnmarshalDecode(dec, c)
		}
		if err != nil {
			return err
		}
		if h.page.Current == "" {
			*held = append(*held, *c)
		} else if err := h.each(h.page, c); err != nil {
			return err
		}
	}
	_, err = dec.ReadToken() // ']'
	return err
}

// infoKeys decodes CommitInfo objects keeping the keys keep accepts
// (decodeInfoKeys). Most commits keep the same few keys and values:
// those share one map, which nobody changes, so that a log of 10,000
// commits does not make 10,000 maps. keep's verdict on each name and
// the strings of kept names and values are remembered by the bytes
// read, so that a name is not made a string for keep on every commit
// (that was most of a log's allocations).
type infoKeys struct {
	keep    func(key string) bool
	verdict map[string]bool   // by quoted name
	strs    map[string]string // by quoted name or raw value
	last    dotmesh.CommitInfo
	kv      []string // the kept keys and values of the object being read
}

// maxRemembered bounds each of infoKeys' maps: a backend writes a dozen
// names and few distinct kept values; past it, a string each time.
const maxRemembered = 1024

// decodeInfoKeys decodes a CommitInfo object, keeping the keys keep
// accepts; as CommitInfo.UnmarshalJSON, a value may be a string or a
// number (kept as its text).
func decodeInfoKeys(dec *jsontext.Decoder, ci *dotmesh.CommitInfo, keep func(string) bool) error {
	ik := infoKeys{keep: keep}
	return ik.decode(dec, ci)
}

// kept is keep's verdict on the name raw quotes.
func (ik *infoKeys) kept(raw jsontext.Value) (bool, error) {
	if v, ok := ik.verdict[string(raw)]; ok {
		return v, nil
	}
	name, err := ik.str(raw)
	if err != nil {
		return false, err
	}
	v := ik.keep(name)
	if ik.verdict == nil {
		ik.verdict = make(map[string]bool)
	}
	if len(ik.verdict) < maxRemembered {
		ik.verdict[string(raw)] = v
	}
	return v, nil
}

// str is the text of raw, a JSON string (unquoted) or number (as written).
func (ik *infoKeys) str(raw jsontext.Value) (string, error) {
	if s, ok := ik.strs[string(raw)]; ok {
		return s, nil
	}
	s := string(raw)
	if raw.Kind() == '"' {
		b, err := jsontext.AppendUnquote(nil, raw)
		if err != nil {
			return "", err
		}
		s = string(b)
	}
	if ik.strs == nil {
		ik.strs = make(map[string]string)
	}
	if len(ik.strs) < maxRemembered {
		ik.strs[string(raw)] = s
	}
	return s, nil
}

func (ik *infoKeys) decode(dec *jsontext.Decoder, ci *dotmesh.CommitInfo) error {
	if null, err := openObject(dec, "commit info"); err != nil || null {
		*ci = nil
		return err
	}
	ik.kv = ik.kv[:0]
	for dec.PeekKind() != '}' {
		raw, err := dec.ReadValue() // the name, valid until the next read
		if err != nil {
			return err
		}
		keep, err := ik.kept(raw)
		if err != nil {
			return err
		}
		if !keep {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		name, err := ik.str(raw)
		if err != nil {
			return err
		}
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if k := v.Kind(); k != '"' && k != '0' {
			return fmt.Errorf("commit info %q is a JSON %v, not a string or number", name, k)
		}
		s, err := ik.str(v)
		if err != nil {
			return err
		}
		ik.kv = append(ik.kv, name, s)
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return err
	}
	ik.finish(ci)
	return nil
}

// finish sets ci to the keys and values in ik.kv: nil when none, else
// the last map when it holds the same.
func (ik *infoKeys) finish(ci *dotmesh.CommitInfo) {
	if len(ik.kv) == 0 {
		*ci = nil
		return
	}
	same := len(ik.last) == len(ik.kv)/2
	for i := 0; same && i < len(ik.kv); i += 2 {
		v, ok := ik.last[ik.kv[i]]
		same = ok && v == ik.kv[i+1]
	}
	if !same {
		ik.last = make(dotmesh.CommitInfo, len(ik.kv)/2)
		for i := 0; i < len(ik.kv); i += 2 {
			ik.last[ik.kv[i]] = ik.kv[i+1]
		}
	}
	*ci = ik.last
}
