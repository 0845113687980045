package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/docker/dockerenv"
)

// Consumer is the Mount.Consumer of Docker's mounts.
const Consumer = dockerenv.Consumer

// Options configure a Plugin.
type Options struct {
	// Driver is the volume driver name Docker knows the plugin by: the
	// socket's base name without ".sock" ("dm").
	Driver string
	// Engine is the Docker engine API socket; empty means DefaultEngine.
	Engine string
	// LegacyStateFile is the JSON file an older version kept create-time
	// options in; New imports it into the node's records once and renames
	// it to LegacyStateFile+".imported". Empty imports nothing.
	LegacyStateFile string
	// BackendAliases maps extra backend names (--opt backend=files) to the
	// node's backend names.
	BackendAliases map[string]string
	Logger         *slog.Logger
}

// Node is what the plugin needs of the engine (a *dotmesh.Node). The
// plugin keeps its records in the node's FrontendRecords.
type Node interface {
	Dot(ctx context.Context, name dotmesh.DotName) (*dotmesh.Dot, error)
	CreateDot(ctx context.Context, name dotmesh.DotName, opts dotmesh.CreateDotOptions) (*dotmesh.Dot, error)
	DeleteDot(ctx context.Context, name dotmesh.DotName) error
	ListDots(ctx context.Context) ([]dotmesh.DotStatus, error)
	Status(ctx context.Context, name dotmesh.DotName) (*dotmesh.DotStatus, error)
	Branches(ctx context.Context, name dotmesh.DotName) ([]*dotmesh.Branch, error)
	ResolveRef(ctx context.Context, name dotmesh.DotName, branch, ref string) (*dotmesh.Commit, error)
	Mounts() *dotmesh.Mounts
	SubdotPath(ctx context.Context, v dotmesh.VolumeName) (string, error)
	FrontendRecords(namespace string) (*dotmesh.FrontendRecords, error)
}

// Plugin serves Docker's volume plugin protocol for a node.
type Plugin struct {
	node    Node
	driver  string
	engine  *engine
	state   *state
	aliases map[string]string
	log     *slog.Logger
	mux     *http.ServeMux
}

// New returns the plugin for node.
func New(node Node, opts Options) (*Plugin, error) {
	if opts.Driver == "" {
		opts.Driver = "dm"
	}
	recs, err := node.FrontendRecords(RecordNamespace)
	if err != nil {
		return nil, err
	}
	p := &Plugin{
		node: node, driver: opts.Driver, engine: newEngine(opts.Engine), state: &state{recs: recs},
		aliases: opts.BackendAliases, log: opts.Logger, mux: http.NewServeMux(),
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.state.importLegacy(ctx, opts.LegacyStateFile, p.log); err != nil {
		return nil, err
	}
	p.mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		fmt.Fprintln(w, `{"Implements": ["VolumeDriver"]}`)
	})
	for op, h := range map[string]func(context.Context, *parsed) (response, error){
		"Create": p.create, "Remove": p.remove, "Mount": p.mount, "Unmount": p.unmount,
		"Path": p.path, "Get": p.get, "List": p.list, "Capabilities": p.capabilities,
	} {
		p.mux.HandleFunc("POST /VolumeDriver."+op, p.handle(op, h))
	}
	return p, nil
}

// Driver is the volume driver name Docker knows the plugin by.
func (p *Plugin) Driver() string { return p.driver }

// ServeHTTP answers Docker's requests.
func (p *Plugin) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

func (p *Plugin) handle(op string, h func(context.Context, *parsed) (response, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, err := readBody(r)
		var req *parsed
		if err == nil {
			req, err = parseRequest(op, body)
		}
		var res response
		if err == nil {
			res, err = h(r.Context(), req)
		}
		if err != nil {
			res = response{Err: err.Error()}
		}
		name := ""
		if req != nil {
			name = req.Name
		}
		lvl := slog.LevelDebug
		if err != nil {
			lvl = slog.LevelWarn
		} else if op == "Create" || op == "Remove" || op == "Mount" || op == "Unmount" {
			lvl = slog.LevelInfo
		}
		p.log.Log(r.Context(), lvl, "docker volume request", "op", op, "volume", name, "took", time.Since(start).Round(time.Millisecond), "err", res.Err)
		reply(w, res)
	}
}

// createOptions are the --opt keys Create accepts.
const createOptions = "backend, delete-on-remove"

func (p *Plugin) create(ctx context.Context, req *parsed) (response, error) {
	var backend string
	deleteOnRemove := false
	for k, v := range req.Opts {
		switch k {
		case "backend":
			backend = v
			if c, ok := p.aliases[v]; ok {
				backend = c
			}
			if err := dotmesh.ValidateName("backend", backend); err != nil {
				return response{}, err
			}
		case "delete-on-remove":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return response{}, fmt.Errorf("%w: option delete-on-remove=%q must be true or false", dotmesh.ErrInvalidArgument, truncate(v))
			}
			deleteOnRemove = b
		default:
			return response{}, fmt.Errorf("%w: unknown option %q; dm accepts %s", dotmesh.ErrInvalidArgument, truncate(k), createOptions)
		}
	}
	v := req.Volume
	d, err := p.node.Dot(ctx, v.Dot)
	switch {
	case errors.Is(err, dotmesh.ErrNotFound) && v.Branch != "":
		return response{}, fmt.Errorf("%w: dot %s does not exist, so it has no branch %s; create it as %s first", dotmesh.ErrNotFound, v.Dot, v.Branch, v.Dot)
	case errors.Is(err, dotmesh.ErrNotFound):
		if d, err = p.node.CreateDot(ctx, v.Dot, dotmesh.CreateDotOptions{Backend: backend}); errors.Is(err, dotmesh.ErrAlreadyExists) {
			d, err = p.node.Dot(ctx, v.Dot) // created meanwhile by someone else
		}
		if err != nil {
			return response{}, err
		}
	case err != nil:
		return response{}, err
	case backend != "" && d.Backend != backend:
		return response{}, fmt.Errorf("%w: dot %s exists on backend %s, not %s", dotmesh.ErrInvalidArgument, v.Dot, d.Backend, backend)
	}
	if v.Branch != "" {
		if _, err := p.node.ResolveRef(ctx, v.Dot, v.Branch, "HEAD"); err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
			return response{}, err
		} else if err != nil && !p.hasBranch(ctx, v.Dot, v.Branch) {
			return response{}, fmt.Errorf("%w: dot %s has no branch %s (`dm checkout -b %s --dot %s` makes it)", dotmesh.ErrNotFound, v.Dot, v.Branch, v.Branch, v.Dot)
		}
	}
	if err := p.state.put(ctx, req.Name, &created{Created: time.Now().UTC(), DeleteOnRemove: deleteOnRemove}); err != nil {
		return response{}, err
	}
	return response{}, nil
}

func (p *Plugin) hasBranch(ctx context.Context, dot dotmesh.DotName, branch string) bool {
	bs, err := p.node.Branches(ctx, dot)
	if err != nil {
		return false
	}
	for _, b := range bs {
		if b.Name == branch {
			return true
		}
	}
	return false
}

// remove forgets a Docker volume. The dot's data and commits stay unless
// the volume was created with delete-on-remove=true.
func (p *Plugin) remove(ctx context.Context, req *parsed) (response, error) {
	c, ok, err := p.state.get(ctx, req.Name)
	if err != nil {
		return response{}, err
	}
	if ok && c.DeleteOnRemove {
		names, err := p.state.names(ctx)
		if err != nil {
			return response{}, err
		}
		var others []string
		for _, n := range names {
			if v, err := dotmesh.ParseVolumeName(n); err == nil && n != req.Name && v.Dot == req.Volume.Dot {
				others = append(others, n)
			}
		}
		if len(others) > 0 {
			return response{}, fmt.Errorf("%w: volume %s was created with delete-on-remove, but Docker volumes %s use dot %s too; remove them first", dotmesh.ErrInUse, req.Name, strings.Join(others, ", "), req.Volume.Dot)
		}
		if err := p.node.DeleteDot(ctx, req.Volume.Dot); err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
			return response{}, err
		}
		p.log.Info("deleted dot on docker volume rm (delete-on-remove)", "volume", req.Name, "dot", req.Volume.Dot.String())
	}
	if ok {
		if err := p.state.put(ctx, req.Name, nil); err != nil {
			return response{}, err
		}
	}
	return response{}, nil
}

func (p *Plugin) mount(ctx context.Context, req *parsed) (response, error) {
	m, err := p.node.Mounts().Mount(ctx, req.Volume, Consumer, req.ID, p.containerStarting(ctx, req.Name))
	if err != nil {
		return response{}, err
	}
	return response{Mountpoint: m.Path}, nil
}

func (p *Plugin) unmount(ctx context.Context, req *parsed) (response, error) {
	return response{}, p.node.Mounts().Unmount(ctx, req.Volume.Dot, Consumer, req.ID)
}

// containerStarting names the container Docker is starting with volume
// name. Docker's Mount request carries only a mount ID; the container it
// is for is the one using the volume that is not running yet. When that is
// not exactly one (or the engine does not answer), the name stays empty
// and people see the mount ID instead.
func (p *Plugin) containerStarting(ctx context.Context, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cs, err := p.engine.containers(ctx, true, name)
	if err != nil {
		p.log.Debug("cannot ask Docker which container mounts a volume", "volume", name, "err", err)
		return ""
	}
	var found []string
	for _, c := range cs {
		if c.uses(p.driver, name) && c.State != "running" && c.State != "paused" {
			found = append(found, c.name())
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

// path answers where a volume is: where a running container has it if
// any (an unpinned name may since follow another branch), else where the
// next mount would be.
func (p *Plugin) path(ctx context.Context, req *parsed) (response, error) {
	path, err := p.where(ctx, req.Volume)
	return response{Mountpoint: path}, err
}

func (p *Plugin) where(ctx context.Context, v dotmesh.VolumeName) (string, error) {
	ms, err := p.node.Mounts().List(ctx, v.Dot)
	if err != nil {
		return "", err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Consumer == Consumer && ms[i].Volume == v.String() {
			return ms[i].Path, nil
		}
	}
	return p.node.SubdotPath(ctx, v)
}

func (p *Plugin) get(ctx context.Context, req *parsed) (response, error) {
	v := req.Volume
	st, err := p.node.Status(ctx, v.Dot)
	if err != nil {
		return response{}, err
	}
	path, err := p.where(ctx, v)
	if err != nil {
		return response{}, err
	}
	branch := st.Dot.Current
	if v.Branch != "" {
		branch = v.Branch
	}
	status := map[string]any{
		"dot":            v.Dot.String(),
		"branch":         branch,
		"current_branch": st.Dot.Current,
		"pinned":         v.Branch != "",
		"subdot":         v.SubdotOrDefault(),
		"backend":        st.Dot.Backend,
		"commits":        st.Commits,
	}
	if st.Head != nil && branch == st.Dot.Current {
		status["head"] = string(st.Head.ID)
	}
	var users []string
	for _, m := range st.Mounts {
		users = append(users, Describe(m))
	}
	if len(users) > 0 {
		status["used_by"] = users
	}
	return response{Volume: &volume{
		Name: req.Name, Mountpoint: path, CreatedAt: st.Dot.Created.Format(time.RFC3339), Status: status,
	}}, nil
}

// list shows every dot (by its own name, meaning its default subdot) and
// every other name Docker created through the plugin whose dot exists.
func (p *Plugin) list(ctx context.Context, _ *parsed) (response, error) {
	dots, err := p.node.ListDots(ctx)
	if err != nil {
		return response{}, err
	}
	seen := make(map[string]bool)
	vols := []volume{}
	exists := make(map[dotmesh.DotName]string)
	for _, st := range dots {
		if st.Dot == nil {
			continue
		}
		n := st.Dot.DotName().String() // without the default namespace
		seen[n] = true
		exists[st.Dot.DotName()] = st.Dot.Created.Format(time.RFC3339)
		vols = append(vols, volume{Name: n, CreatedAt: exists[st.Dot.DotName()]})
	}
	names, err := p.state.names(ctx)
	if err != nil {
		return response{}, err
	}
	for _, n := range names {
		v, err := dotmesh.ParseVolumeName(n)
		if err != nil || seen[n] {
			continue
		}
		if at, ok := exists[v.Dot]; ok {
			vols = append(vols, volume{Name: n, CreatedAt: at})
		}
	}
	return response{Volumes: vols}, nil
}

func (p *Plugin) capabilities(context.Context, *parsed) (response, error) {
	return response{Capabilities: &capabilities{Scope: "local"}}, nil
}

// Describe names a mount's user for people: the container name when
// Docker told, else the consumer and a short mount ID.
func Describe(m dotmesh.Mount) string { return dockerenv.Describe(m) }
