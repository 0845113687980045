package client

import (
	"bytes"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// decodeCommit decodes a Commit object as the JSON v2 decoder would,
// keeping of its Info only the keys ik keeps (infoKeys.decode). Written
// out field by field rather than left to the decoder's struct code: a
// log of 10,000 commits spent a third of its decoding matching names and
// making strings of values it never shows (dot, branch, Info's keys);
// here a name is matched as the bytes read and only the shown fields
// become strings. A name sent with escapes is unquoted first, so every
// spelling of a field reads as the decoder reads it.
func (ik *infoKeys) decodeCommit(dec *jsontext.Decoder, c *dotmesh.Commit) error {
	if null, err := openObject(dec, "a commit"); err != nil || null {
		return err // null leaves c as it is, as the decoder leaves a struct
	}
	for dec.PeekKind() != '}' {
		raw, err := dec.ReadValue() // the name, valid until the next read
		if err != nil {
			return err
		}
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			if name, err = jsontext.AppendUnquote(nil, raw); err != nil {
				return err
			}
		}
		switch string(name) {
		case "id":
			err = decodeString(dec, (*string)(&c.ID))
		case "dot":
			err = decodeString(dec, (*string)(&c.Dot))
		case "branch":
			err = decodeString(dec, &c.Branch)
		case "parent":
			err = decodeString(dec, (*string)(&c.Parent))
		case "author":
			err = decodeString(dec, &c.Author)
		case "message":
			err = decodeString(dec, &c.Message)
		case "time":
			err = jsonv2.UnmarshalDecode(dec, &c.Time)
		case "metadata":
			err = jsonv2.UnmarshalDecode(dec, &c.Metadata)
		case "info":
			err = ik.decode(dec, &c.Info)
		case "pruned":
			err = jsonv2.UnmarshalDecode(dec, &c.Pruned)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return fmt.Errorf("commit field %q: %w", name, err)
		}
	}
	_, err := dec.ReadToken() // '}'
	return err
}

// decodeString reads a JSON string (or null, which leaves s empty, as
// the decoder does) into s.
func decodeString(dec *jsontext.Decoder, s *string) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case '"':
		*s = tok.String()
	case 'n':
		*s = ""
	default:
		return fmt.Errorf("a JSON %v, not a string", tok.Kind())
	}
	return nil
}

// openObject reads the start of a JSON object, or null (true): what,
// the value's meaning, words the error for anything else.
func openObject(dec *jsontext.Decoder, what string) (null bool, err error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return false, err
	}
	switch tok.Kind() {
	case 'n':
		return true, nil
	case '{':
		return false, nil
	}
	return false, fmt.Errorf("%s is a JSON %v, not an object", what, tok.Kind())
}
