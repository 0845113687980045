package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Call is the JSON body an HTTP hook is sent (POST, application/json).
type Call struct {
	Hook    string            `json:"hook"` // the stage
	Dot     string            `json:"dot"`  // NAMESPACE/NAME
	Branch  string            `json:"branch"`
	Path    string            `json:"path"`    // the branch's working tree on the node
	Subdots map[string]string `json:"subdots"` // subdot -> directory on the node
	Outcome string            `json:"outcome,omitempty"`
	Commit  string            `json:"commit,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// http POSTs the call to the hook's URL; any 2xx answer is success.
func (r *Runner) http(ctx context.Context, h dotmesh.Hook, call dotmesh.HookCall) error {
	body, err := json.Marshal(Call{Hook: h.Stage, Dot: fullName(call.Dot), Branch: call.Branch, Path: call.Root,
		Subdots: call.Subdots, Outcome: call.Outcome, Commit: string(call.Commit), Error: call.Error})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %v", dotmesh.Hook{URL: h.URL}.Redacted().URL, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := oneLine(string(answer))
	if text != "" {
		r.logger(call).InfoContext(ctx, "hook answer", "hook", h.Stage, "status", resp.StatusCode, "body", text)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if text != "" {
			text = ": " + strings.TrimSpace(text)
		}
		return fmt.Errorf("HTTP %s%s", resp.Status, text)
	}
	return nil
}
