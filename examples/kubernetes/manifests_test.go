// Package kubernetes holds example manifests for the CSI and FlexVolume
// drivers; this test checks their syntax and that they agree with the
// drivers (names, keys, options).
package kubernetes

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dotmesh-io/dotmesh/frontends/csi"
	"github.com/dotmesh-io/dotmesh/frontends/flex"
)

type obj map[string]any

// get walks a dotted path ("spec.source.persistentVolumeClaimName").
func (o obj) get(path string) any {
	var cur any = map[string]any(o)
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// required fields per apiVersion/kind, beyond metadata.name.
var kinds = map[string][]string{
	"storage.k8s.io/v1/CSIDriver":                     {"spec.attachRequired"},
	"storage.k8s.io/v1/StorageClass":                  {"provisioner"},
	"v1/PersistentVolumeClaim":                        {"spec.accessModes", "spec.resources.requests.storage"},
	"v1/Pod":                                          {"spec.containers", "spec.volumes"},
	"v1/ServiceAccount":                               {},
	"snapshot.storage.k8s.io/v1/VolumeSnapshotClass":  {"driver", "deletionPolicy"},
	"snapshot.storage.k8s.io/v1/VolumeSnapshot":       {"spec.source.persistentVolumeClaimName"},
	"rbac.authorization.k8s.io/v1/ClusterRole":        {"rules"},
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": {"subjects", "roleRef.name"},
	"apps/v1/DaemonSet":                               {"spec.selector.matchLabels", "spec.template.spec.containers"},
}

func load(t *testing.T) map[string][]obj {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string][]obj{}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(r)
		for i := 0; ; i++ {
			var raw map[string]any // nested maps decode as map[string]any
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			o := obj(raw)
			api, _ := o["apiVersion"].(string)
			kind, _ := o["kind"].(string)
			req, ok := kinds[api+"/"+kind]
			if !ok {
				t.Errorf("%s document %d: unexpected apiVersion %q kind %q", f, i, api, kind)
				continue
			}
			for _, p := range append([]string{"metadata.name"}, req...) {
				if o.get(p) == nil {
					t.Errorf("%s: %s %v lacks %s", f, kind, o.get("metadata.name"), p)
				}
			}
			byKind[kind] = append(byKind[kind], o)
		}
		r.Close()
	}
	return byKind
}

func TestManifests(t *testing.T) {
	m := load(t)
	for _, kind := range []string{"CSIDriver", "StorageClass", "PersistentVolumeClaim", "VolumeSnapshotClass", "VolumeSnapshot", "Pod", "DaemonSet"} {
		if len(m[kind]) == 0 {
			t.Errorf("no %s example", kind)
		}
	}
	for _, o := range m["CSIDriver"] {
		if o.get("metadata.name") != csi.DriverName || o.get("spec.attachRequired") != false {
			t.Errorf("CSIDriver %v: want name %s, attachRequired false", o.get("metadata.name"), csi.DriverName)
		}
	}
	for _, o := range m["StorageClass"] {
		if o.get("provisioner") != csi.DriverName || o.get("volumeBindingMode") != "WaitForFirstConsumer" {
			t.Errorf("StorageClass %v: want provisioner %s and WaitForFirstConsumer (dots are node-local)", o.get("metadata.name"), csi.DriverName)
		}
		for k := range o.get("parameters").(map[string]any) {
			if k != csi.ParamNamespace && k != csi.ParamSubdot {
				t.Errorf("StorageClass parameter %q is unknown to the driver", k)
			}
		}
	}
	for _, o := range m["VolumeSnapshotClass"] {
		if o.get("driver") != csi.DriverName {
			t.Errorf("VolumeSnapshotClass driver %v; want %s", o.get("driver"), csi.DriverName)
		}
	}
	// Claims and snapshots refer to objects the examples define.
	names := func(kind string) []any {
		var out []any
		for _, o := range m[kind] {
			out = append(out, o.get("metadata.name"))
		}
		return out
	}
	for _, o := range m["PersistentVolumeClaim"] {
		if sc := o.get("spec.storageClassName"); !slices.Contains(names("StorageClass"), sc) {
			t.Errorf("claim %v uses storage class %v, which no example defines", o.get("metadata.name"), sc)
		}
		if ds := o.get("spec.dataSource.name"); ds != nil && !slices.Contains(names("VolumeSnapshot"), ds) {
			t.Errorf("claim %v restores snapshot %v, which no example defines", o.get("metadata.name"), ds)
		}
	}
	for _, o := range m["VolumeSnapshot"] {
		if c := o.get("spec.source.persistentVolumeClaimName"); !slices.Contains(names("PersistentVolumeClaim"), c) {
			t.Errorf("snapshot of claim %v, which no example defines", c)
		}
	}
	// FlexVolume options must pass the driver's own parser.
	flexSeen := false
	for _, o := range m["Pod"] {
		for _, v := range o.get("spec.volumes").([]any) {
			fv, ok := obj(v.(map[string]any)).get("flexVolume").(map[string]any)
			if !ok {
				continue
			}
			flexSeen = true
			if fv["driver"] != "dotmesh.io/dm" {
				t.Errorf("flexVolume driver %v; want dotmesh.io/dm (directory %s)", fv["driver"], flex.DriverDir)
			}
			js, _ := json.Marshal(fv["options"])
			if _, err := flex.ParseOptions(string(js)); err != nil {
				t.Errorf("flexVolume options %s: %v", js, err)
			}
		}
	}
	if !flexSeen {
		t.Error("no FlexVolume pod example")
	}
	// The DaemonSet runs dm serve with the CSI socket the sidecars use, from
	// the image `make image` builds (its entrypoint is dm).
	image := makefileImage(t) + ":latest"
	for _, o := range m["DaemonSet"] {
		var dm obj
		for _, c := range o.get("spec.template.spec.containers").([]any) {
			if c := obj(c.(map[string]any)); c.get("name") == "dm" {
				dm = c
			}
		}
		if dm == nil {
			t.Errorf("DaemonSet %v has no container named dm", o.get("metadata.name"))
		} else {
			if dm.get("image") != image || dm.get("imagePullPolicy") != "IfNotPresent" {
				t.Errorf("DaemonSet container dm: image %v, pull policy %v; want %s (make image) and IfNotPresent (a local build is on no registry)", dm.get("image"), dm.get("imagePullPolicy"), image)
			}
			if args, _ := dm.get("args").([]any); len(args) == 0 || args[0] != "serve" {
				t.Errorf("DaemonSet container dm: args %v, want serve ... (the image's entrypoint is dm)", args)
			}
		}
		args, _ := json.Marshal(o.get("spec.template.spec.containers"))
		for _, want := range []string{"--csi-socket=/csi/csi.sock", "--csi-node-id=$(NODE_NAME)", "--node-deployment=true"} {
			if !strings.Contains(string(args), want) {
				t.Errorf("the DaemonSet lacks %s", want)
			}
		}
	}
}

// makefileImage is the image name `make image` builds (IMAGE ?= ...).
func makefileImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "IMAGE ?= "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("the Makefile sets no IMAGE ?= NAME: make image names its image there")
	return ""
}
