package docker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// contentType is what Docker sends and expects from volume plugins.
const contentType = "application/vnd.docker.plugins.v1.1+json"

// maxBody bounds a request body: Docker's requests are a name, an id and a
// few options.
const maxBody = 64 << 10

// request is the union of the fields Docker sends to /VolumeDriver.*.
// Unknown fields are ignored, not refused: a newer Docker may add some.
type request struct {
	Name string            `json:"Name"`
	ID   string            `json:"ID"`
	Opts map[string]string `json:"Opts"`
}

// parsed is a request after validation.
type parsed struct {
	request
	Volume dotmesh.VolumeName
}

// volume is one volume in Get and List answers.
type volume struct {
	Name       string         `json:"Name"`
	Mountpoint string         `json:"Mountpoint,omitempty"`
	CreatedAt  string         `json:"CreatedAt,omitempty"`
	Status     map[string]any `json:"Status,omitempty"`
}

// response is the union of the answers; Err is empty on success.
type response struct {
	Err          string        `json:"Err"`
	Mountpoint   string        `json:"Mountpoint,omitempty"`
	Volume       *volume       `json:"Volume,omitempty"`
	Volumes      []volume      `json:"Volumes,omitempty"`
	Capabilities *capabilities `json:"Capabilities,omitempty"`
}

type capabilities struct {
	Scope string `json:"Scope"`
}

// needsName lists the endpoints whose request names a volume (and, for
// Mount and Unmount, carries a mount ID).
var needsName = map[string]bool{
	"Create": true, "Remove": true, "Mount": true, "Unmount": true, "Path": true, "Get": true,
}

// parseRequest decodes and validates the body of /VolumeDriver.<op>. It
// never changes anything; every error is one line for `docker run` to show.
func parseRequest(op string, body []byte) (*parsed, error) {
	var p parsed
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && !bytes.Equal(trimmed, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if err := dec.Decode(&p.request); err != nil {
			return nil, fmt.Errorf("%w: malformed %s request from Docker: %s", dotmesh.ErrInvalidArgument, op, oneLine(err.Error()))
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: malformed %s request from Docker: more than one JSON value", dotmesh.ErrInvalidArgument, op)
		}
	}
	if !needsName[op] {
		return &p, nil
	}
	v, err := dotmesh.ParseVolumeName(p.Name)
	if err != nil {
		return nil, err
	}
	p.Volume = v
	if (op == "Mount" || op == "Unmount") && (p.ID == "" || len(p.ID) > 4096 || strings.ContainsRune(p.ID, 0)) {
		return nil, fmt.Errorf("%w: %s request for %s needs a mount ID of 1 to 4096 bytes without NUL", dotmesh.ErrInvalidArgument, op, truncate(p.Name))
	}
	if op != "Create" && len(p.Opts) > 0 {
		return nil, fmt.Errorf("%w: %s takes no options", dotmesh.ErrInvalidArgument, op)
	}
	return &p, nil
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the request: %w", dotmesh.ErrInvalidArgument, err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%w: request body larger than %d bytes", dotmesh.ErrInvalidArgument, maxBody)
	}
	return b, nil
}

// reply writes a protocol answer. Errors go with status 500, as Docker's
// plugin client expects, and the message on one line.
func reply(w http.ResponseWriter, res response) {
	w.Header().Set("Content-Type", contentType)
	if res.Err != "" {
		res = response{Err: oneLine(res.Err)}
		w.WriteHeader(http.StatusInternalServerError)
	}
	_ = json.NewEncoder(w).Encode(res)
}

// oneLine folds s onto one line, so Docker shows the whole message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
