package client

import (
	"fmt"
	"strconv"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dotmesh-io/dotmesh/api"
)

// decodeRows decodes the rows of an api.DotTable as the JSON v2 decoder
// would, without reflection for the fields every row has: decoding them
// by reflection was half of what dm list of 1,001 dots spent on its
// answer. A value of an unexpected form (an escaped string, a number
// strconv does not take, another kind) is decoded by the JSON v2 decoder,
// for its result and its error.
func decodeRows(dec *jsontext.Decoder) ([]api.DotRow, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case '[':
	default:
		return nil, fmt.Errorf("rows are a JSON %v, not an array", tok.Kind())
	}
	rows := []api.DotRow{}
	for dec.PeekKind() != ']' {
		var r api.DotRow
		if err := decodeRow(dec, &r); err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	_, err = dec.ReadToken() // ']'
	return rows, err
}

func decodeRow(dec *jsontext.Decoder, r *api.DotRow) error {
	if null, err := openObject(dec, "a dot's row"); err != nil || null {
		return err
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String()
		switch name {
		case "ns":
			err = decodeString(dec, &r.Namespace)
		case "name":
			err = decodeString(dec, &r.Name)
		case "branch":
			err = decodeString(dec, &r.Branch)
		case "error":
			err = decodeString(dec, &r.Error)
		case "size":
			err = rowInt(dec, &r.Size)
		case "commits":
			var n int64
			if err = rowInt(dec, &n); err == nil {
				if int64(int(n)) != n {
					err = jsonv2.Unmarshal([]byte(strconv.FormatInt(n, 10)), &r.Commits)
				} else {
					r.Commits = int(n)
				}
			}
		case "dirty":
			err = rowBool(dec, &r.Dirty)
		case "labels":
			err = jsonv2.UnmarshalDecode(dec, &r.Labels)
		case "mounts":
			err = jsonv2.UnmarshalDecode(dec, &r.Mounts)
		default: // what a newer node adds
			name, err = "skipped", dec.SkipValue()
		}
		if err != nil {
			return fmt.Errorf("dot row field %s: %w", name, err)
		}
	}
	_, err := dec.ReadToken() // '}'
	return err
}

// rowInt reads an integer field: a plain integer as it is, null as 0.
func rowInt(dec *jsontext.Decoder, n *int64) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	if v.Kind() == '0' {
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			*n = i
			return nil
		}
	}
	if v.Kind() == 'n' {
		*n = 0
		return nil
	}
	return jsonv2.Unmarshal(v, n)
}

// rowBool reads a boolean field, null as false.
func rowBool(dec *jsontext.Decoder, b *bool) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case 't':
		*b = true
		return nil
	case 'f', 'n':
		*b = false
		return nil
	}
	return jsonv2.Unmarshal(v, b)
}
