package deploy

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dotmesh-io/dotmesh/frontends/csi"
)

// The snapshot kinds are CRDs (external-snapshotter's client module is not
// used here): they decode strictly into these copies of their v1 fields.
type volumeSnapshotClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Driver            string            `json:"driver"`
	Parameters        map[string]string `json:"parameters,omitempty"`
	DeletionPolicy    string            `json:"deletionPolicy"`
}

type volumeSnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Source struct {
			PersistentVolumeClaimName *string `json:"persistentVolumeClaimName,omitempty"`
			VolumeSnapshotContentName *string `json:"volumeSnapshotContentName,omitempty"`
		} `json:"source"`
		VolumeSnapshotClassName *string `json:"volumeSnapshotClassName,omitempty"`
	} `json:"spec"`
}

// newTyped returns the API type an object's apiVersion and kind name.
func newTyped(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/Pod":
		return &corev1.Pod{}
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "storage.k8s.io/v1/CSIDriver":
		return &storagev1.CSIDriver{}
	case "storage.k8s.io/v1/StorageClass":
		return &storagev1.StorageClass{}
	case "snapshot.storage.k8s.io/v1/VolumeSnapshotClass":
		return &volumeSnapshotClass{}
	case "snapshot.storage.k8s.io/v1/VolumeSnapshot":
		return &volumeSnapshot{}
	}
	return nil
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeAll splits a YAML stream into documents and decodes each strictly
// (unknown and duplicate fields are errors) into its API type.
func decodeAll(src string, data []byte) ([]any, error) {
	var out []any
	for i, doc := range docSep.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("%s document %d: %v", src, i, err)
		}
		obj := newTyped(tm.APIVersion, tm.Kind)
		if obj == nil {
			return nil, fmt.Errorf("%s document %d: apiVersion %q kind %q is not a type this test knows", src, i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s document %d (%s): %v", src, i, tm.Kind, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func decodeFiles(t *testing.T, pattern string) []any {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests match %s: %v", pattern, err)
	}
	var objs []any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o, err := decodeAll(f, b)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	return objs
}

// Strict decoding is strict: a misspelt field, a field at the wrong
// level and an unknown kind fail.
func TestDecodeStrictRejects(t *testing.T) {
	for _, bad := range []string{
		"apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: x}\nspec: {attachRequierd: false}\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, image: b, arg: [serve]}]}}}\n",
		"apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: x}\nprovisioner: a\nprovisioner: b\n",
		"apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\nmetadata: {name: x}\ndriver: d\ndeletionPolicy: Delete\nparameter: {}\n",
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
	} {
		if _, err := decodeAll("bad", []byte(bad)); err == nil {
			t.Errorf("decoded without error:\n%s", bad)
		}
	}
	if _, err := decodeAll("good", []byte("# c\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")); err != nil {
		t.Errorf("a valid manifest: %v", err)
	}
}

// The plain manifests, cluster mode and the single-node examples, decode
// strictly and agree with the driver and dm.
func TestManifestsStrict(t *testing.T) {
	checkDeployment(t, "deploy/kubernetes", decodeFiles(t, "kubernetes/*.yaml"), true)
	// As they are (files): no resizer; switched to zfs as their comments
	// say: the resizer, its rule and expansion, all checked again.
	if rs := resizer(one[*appsv1.DaemonSet](t, decodeFiles(t, "kubernetes/*.yaml"))); rs != nil {
		t.Error("deploy/kubernetes runs the csi-resizer with the files backend")
	}
	zfs := plainSwitched(t)
	checkDeployment(t, "deploy/kubernetes switched to zfs", zfs, true)
	if resizer(one[*appsv1.DaemonSet](t, zfs)) == nil {
		t.Error("deploy/kubernetes switched to zfs: no csi-resizer")
	}
	examples := decodeFiles(t, "../examples/kubernetes/*.yaml")
	if len(examples) < 10 {
		t.Fatalf("only %d objects in examples/kubernetes", len(examples))
	}
}

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm is the real helm, built once into the cache (scripts/ensure-helm.sh).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	helmOnce.Do(func() {
		out, err := exec.Command("../scripts/ensure-helm.sh").Output()
		helmPath, helmErr = strings.TrimSpace(string(out)), err
		if ee, ok := err.(*exec.ExitError); ok {
			helmErr = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
	})
	if helmErr != nil {
		t.Fatalf("helm (scripts/ensure-helm.sh builds it from the Go module proxy): %v", helmErr)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helmPath, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

func TestHelmChart(t *testing.T) {
	if out, err := helm(t, "lint", "--strict", "helm/dotmesh"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	render := func(args ...string) []any {
		t.Helper()
		out, err := helm(t, append([]string{"template", "dotmesh", "helm/dotmesh", "--namespace", "dotmesh"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeAll("helm template "+strings.Join(args, " "), []byte(out))
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	// Defaults render what the plain manifests hold (bar the Namespace,
	// which helm install --create-namespace makes).
	def := render()
	checkDeployment(t, "chart", def, true)
	plain := decodeFiles(t, "kubernetes/*.yaml")
	if a, b := dmArgs(t, one[*appsv1.DaemonSet](t, def)), dmArgs(t, one[*appsv1.DaemonSet](t, plain)); !slices.Equal(a, b) {
		t.Errorf("the chart's dm args differ from deploy/kubernetes/dotmesh.yaml:\n%v\n%v", a, b)
	}
	if a, b := kinds(def), kinds(plain); !slices.Equal(a, slices.DeleteFunc(b, func(k string) bool { return k == "*v1.Namespace" })) {
		t.Errorf("the chart renders %v; the plain manifests hold %v", a, b)
	}
	sameDeployment(t, "chart defaults vs deploy/kubernetes", def, plain)
	if resizer(one[*appsv1.DaemonSet](t, def)) != nil {
		t.Error("the chart's default (files) runs the csi-resizer")
	}
	// zfs and btrfs: the resizer, as deploy/kubernetes switched to zfs has it.
	for _, backend := range []string{"zfs", "btrfs"} {
		objs := render("--set", "backend="+backend)
		checkDeployment(t, "chart, "+backend, objs, true)
		if resizer(one[*appsv1.DaemonSet](t, objs)) == nil {
			t.Errorf("chart, backend %s: no csi-resizer", backend)
		}
		if backend == "zfs" {
			sameDeployment(t, "chart zfs vs deploy/kubernetes switched to zfs", objs, plainSwitched(t))
		}
	}
	off := render("--set", "backend=btrfs", "--set", "resizer.enabled=false")
	checkDeployment(t, "chart, btrfs, resizer off", off, true)
	if resizer(one[*appsv1.DaemonSet](t, off)) != nil {
		t.Error("resizer.enabled=false still runs the csi-resizer")
	}

	ext := render("--set", "etcd.bundled=false", "--set", "etcd.endpoints={https://etcd.example:2379,https://etcd2.example:2379}",
		"--set", "backend=zfs", "--set", "image.tag=v1.2.3", "--set", "tls.secretName=my-tls", "--set", "storageClass.create=false")
	checkDeployment(t, "chart, external etcd", ext, false)
	for _, o := range ext {
		if _, ok := o.(*appsv1.StatefulSet); ok {
			t.Error("an external etcd still renders the etcd StatefulSet")
		}
		if _, ok := o.(*storagev1.StorageClass); ok {
			t.Error("storageClass.create=false still renders a StorageClass")
		}
	}
	ds := one[*appsv1.DaemonSet](t, ext)
	args := dmArgs(t, ds)
	for _, want := range []string{"--etcd-endpoints=https://etcd.example:2379,https://etcd2.example:2379", "--backend=zfs"} {
		if !slices.Contains(args, want) {
			t.Errorf("external etcd render: dm args %v lack %s", args, want)
		}
	}
	if img := ds.Spec.Template.Spec.Containers[0].Image; img != "dotmesh/dm:v1.2.3" {
		t.Errorf("image %s, want dotmesh/dm:v1.2.3", img)
	}
	if !slices.ContainsFunc(ds.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == "my-tls" }) {
		t.Error("tls.secretName=my-tls is not mounted")
	}

	// Bad values: one line saying what is wrong.
	for _, c := range []struct{ set, want string }{
		{"backend=lvm", `backend "lvm": choose files, zfs or btrfs`},
		{"etcd.bundled=false", "etcd.endpoints: give your etcd's client URLs, or set etcd.bundled=true"},
	} {
		_, err := helm(t, "template", "dotmesh", "helm/dotmesh", "--set", c.set)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %s: %v; want an error saying %q", c.set, err, c.want)
		}
	}
}

func kinds(objs []any) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%T", o))
	}
	slices.Sort(out)
	return out
}

func one[T any](t *testing.T, objs []any) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want one", len(found), zero)
	}
	return found[0]
}

func container(t *testing.T, ps corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range ps.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

func dmArgs(t *testing.T, ds *appsv1.DaemonSet) []string {
	t.Helper()
	return container(t, ds.Spec.Template.Spec, "dm").Args
}

func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// checkDeployment checks a cluster-mode deployment (plain or rendered):
// the objects it needs, dm's flags against `dm serve --help`, the CSI
// names against the driver, sockets and Secrets that agree, pinned images.
func checkDeployment(t *testing.T, what string, objs []any, bundledEtcd bool) {
	t.Helper()
	ds := one[*appsv1.DaemonSet](t, objs)
	one[*storagev1.CSIDriver](t, objs)
	ps := ds.Spec.Template.Spec
	dm := container(t, ps, "dm")
	if len(dm.Args) == 0 || dm.Args[0] != "serve" {
		t.Fatalf("%s: dm args %v; want serve ... (the image's entrypoint is dm)", what, dm.Args)
	}
	help := serveHelp(t)
	for _, a := range dm.Args[1:] {
		name, _, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") || !strings.Contains(help, "      "+name+" ") {
			t.Errorf("%s: dm serve has no flag %s (dm serve --help)", what, name)
		}
	}
	for _, want := range []string{"--store=etcd", "--csi-socket=/csi/csi.sock", "--csi-node-id=$(NODE_NAME)", "--cluster-key-file=/cluster-key/admin-api-key",
		"--tls-cert=/tls/tls.crt", "--tls-key=/tls/tls.key", "--peer-ca=/tls/ca.crt", "--etcd-ca=/etcd-tls/ca.crt"} {
		if !slices.Contains(dm.Args, want) {
			t.Errorf("%s: dm args lack %s", what, want)
		}
	}
	if adv, _ := flagValue(dm.Args, "--advertise"); !strings.HasPrefix(adv, "https://") {
		t.Errorf("%s: --advertise %q; nodes call each other over TLS", what, adv)
	}
	if !ps.HostNetwork || ps.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("%s: the DaemonSet needs hostNetwork (the node id is the host's name) and ClusterFirstWithHostNet (etcd's names)", what)
	}
	if dm.SecurityContext == nil || dm.SecurityContext.Privileged == nil || !*dm.SecurityContext.Privileged {
		t.Errorf("%s: dm must be privileged to bind-mount into kubelet's directories", what)
	}
	// Sidecars talk to the socket dm serves, and the images are pinned.
	for _, c := range ps.Containers {
		if c.Name == "dm" {
			continue
		}
		if !slices.Contains(c.Args, "--csi-address=/csi/csi.sock") {
			t.Errorf("%s: sidecar %s does not use /csi/csi.sock", what, c.Name)
		}
		if i := strings.LastIndex(c.Image, ":"); i < 0 || c.Image[i+1:] == "latest" || !strings.HasPrefix(c.Image, "registry.k8s.io/sig-storage/") {
			t.Errorf("%s: sidecar image %s is not a pinned registry.k8s.io/sig-storage image", what, c.Image)
		}
	}
	for _, name := range []string{"node-driver-registrar", "csi-provisioner", "csi-snapshotter"} {
		container(t, ps, name)
	}
	// One active controller sidecar of each kind in the cluster.
	for _, c := range ps.Containers {
		if c.Name != "dm" && c.Name != "node-driver-registrar" &&
			(!slices.Contains(c.Args, "--leader-election") || !slices.Contains(c.Args, "--leader-election-namespace="+ds.Namespace)) {
			t.Errorf("%s: sidecar %s runs on every node without leader election in %s: %v", what, c.Name, ds.Namespace, c.Args)
		}
	}
	checkResizer(t, what, objs, ds)
	// Secrets: the names and keys make-secrets.sh makes.
	secrets := map[string][]string{"dotmesh-admin-key": {"admin-api-key"}, "dotmesh-node-tls": {"ca.crt", "tls.crt", "tls.key"},
		"dotmesh-etcd-tls": {"ca.crt", "tls.crt", "tls.key", "client.crt", "client.key"}}
	mounts := map[string]string{}
	for _, m := range dm.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, v := range ps.Volumes {
		if v.Secret == nil {
			continue
		}
		keys, ok := secrets[v.Secret.SecretName]
		if !ok && !strings.HasPrefix(what, "chart, ") {
			t.Errorf("%s: volume %s mounts Secret %s, which make-secrets.sh does not make", what, v.Name, v.Secret.SecretName)
		}
		for _, it := range v.Secret.Items {
			if ok && !slices.Contains(keys, it.Key) {
				t.Errorf("%s: Secret %s has no key %s", what, v.Secret.SecretName, it.Key)
			}
		}
		if mounts[v.Name] == "" {
			t.Errorf("%s: Secret volume %s is not mounted in dm", what, v.Name)
		}
	}
	// The CSI objects agree with the driver.
	for _, o := range objs {
		switch o := o.(type) {
		case *storagev1.CSIDriver:
			if o.Name != csi.DriverName || o.Spec.AttachRequired == nil || *o.Spec.AttachRequired {
				t.Errorf("%s: CSIDriver %s; want %s with attachRequired false", what, o.Name, csi.DriverName)
			}
		case *storagev1.StorageClass:
			if o.Provisioner != csi.DriverName {
				t.Errorf("%s: StorageClass provisioner %s", what, o.Provisioner)
			}
			for k := range o.Parameters {
				if k != csi.ParamNamespace && k != csi.ParamSubdot {
					t.Errorf("%s: StorageClass parameter %q is unknown to the driver", what, k)
				}
			}
		case *volumeSnapshotClass:
			if o.Driver != csi.DriverName {
				t.Errorf("%s: VolumeSnapshotClass driver %s", what, o.Driver)
			}
		}
	}
	if !bundledEtcd {
		return
	}
	// The nodes reach every member of the bundled etcd by its stable name.
	sts := one[*appsv1.StatefulSet](t, objs)
	eps, _ := flagValue(dm.Args, "--etcd-endpoints")
	var want []string
	for i := range int(*sts.Spec.Replicas) {
		want = append(want, fmt.Sprintf("https://%s-%d.%s.%s.svc:2379", sts.Name, i, sts.Spec.ServiceName, sts.Namespace))
	}
	if eps != strings.Join(want, ",") {
		t.Errorf("%s: --etcd-endpoints %s; the StatefulSet's members are %s", what, eps, strings.Join(want, ","))
	}
	// etcd runs as a user of its own: its Secret must be readable through fsGroup.
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Secret != nil && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o040 == 0) {
			t.Errorf("%s: etcd's Secret volume %s is not group-readable; etcd (user %v, fsGroup) cannot read it", what, v.Name, sts.Spec.Template.Spec.SecurityContext.RunAsUser)
		}
	}
}

// resizer is the csi-resizer container of ds, or nil.
func resizer(ds *appsv1.DaemonSet) *corev1.Container {
	for i, c := range ds.Spec.Template.Spec.Containers {
		if c.Name == "csi-resizer" {
			return &ds.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// allows says whether rules grant verb on group/resource.
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// checkResizer: the csi-resizer runs exactly where the driver offers
// expansion (a zfs or btrfs backend; on files csi-resizer would exit at
// start), pinned, with leader election, and with the RBAC of upstream's
// deploy/kubernetes/rbac.yaml (v1.13.2) bar pods (no volume-in-use
// handling: expansion is online) and volumeattributesclasses (feature gate
// off); StorageClasses allow expansion exactly when it runs.
func checkResizer(t *testing.T, what string, objs []any, ds *appsv1.DaemonSet) {
	t.Helper()
	var rules []rbacv1.PolicyRule
	for _, o := range objs {
		if cr, ok := o.(*rbacv1.ClusterRole); ok {
			rules = append(rules, cr.Rules...)
		}
	}
	lease := one[*rbacv1.Role](t, objs)
	backend, _ := flagValue(dmArgs(t, ds), "--backend")
	rs := resizer(ds)
	if rs == nil {
		if allows(rules, "", "persistentvolumeclaims/status", "patch") {
			t.Errorf("%s: no csi-resizer, yet the ClusterRole grants persistentvolumeclaims/status", what)
		}
	} else {
		if backend != "zfs" && backend != "btrfs" {
			t.Errorf("%s: csi-resizer with backend %q; the driver offers no expansion there and csi-resizer exits", what, backend)
		}
		if img, ok := strings.CutPrefix(rs.Image, "registry.k8s.io/sig-storage/csi-resizer:"); !ok || !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(img) {
			t.Errorf("%s: csi-resizer image %s; want registry.k8s.io/sig-storage/csi-resizer:vX.Y.Z", what, rs.Image)
		}
		if !slices.Contains(rs.Args, "--handle-volume-inuse-error=false") {
			t.Errorf("%s: csi-resizer args %v; expansion is online, pods need not be watched (nor read)", what, rs.Args)
		}
		for _, want := range []struct{ group, resource, verb string }{
			{"", "persistentvolumes", "get"}, {"", "persistentvolumes", "list"}, {"", "persistentvolumes", "watch"}, {"", "persistentvolumes", "patch"},
			{"", "persistentvolumeclaims", "get"}, {"", "persistentvolumeclaims", "list"}, {"", "persistentvolumeclaims", "watch"},
			{"", "persistentvolumeclaims/status", "patch"}, {"", "events", "create"}, {"", "events", "patch"},
		} {
			if !allows(rules, want.group, want.resource, want.verb) {
				t.Errorf("%s: the csi-resizer needs %s on %s; the ClusterRole does not grant it", what, want.verb, want.resource)
			}
		}
		for _, verb := range []string{"get", "list", "watch", "create", "update"} {
			if !allows(lease.Rules, "coordination.k8s.io", "leases", verb) {
				t.Errorf("%s: leader election needs %s on leases", what, verb)
			}
		}
	}
	// Least privilege: nothing the sidecars do not use.
	for _, r := range rules {
		if slices.Contains(r.Resources, "persistentvolumeclaims/status") && !slices.Equal(r.Verbs, []string{"patch"}) {
			t.Errorf("%s: persistentvolumeclaims/status verbs %v; the resizer only patches", what, r.Verbs)
		}
		if slices.Contains(r.Resources, "pods") || slices.Contains(r.Resources, "volumeattributesclasses") || slices.Contains(r.Resources, "secrets") {
			t.Errorf("%s: the ClusterRole grants %v, which no sidecar here uses", what, r.Resources)
		}
	}
	for _, o := range objs {
		if sc, ok := o.(*storagev1.StorageClass); ok {
			if got := sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion; got != (rs != nil) {
				t.Errorf("%s: StorageClass %s allowVolumeExpansion %v, csi-resizer running %v (backend %s)", what, sc.Name, got, rs != nil, backend)
			}
		}
	}
}

// uncomment returns text with the YAML block commented out at a line
// "#"+first (and the lines after it that go on with "#  " at the same
// column) made live.
func uncomment(t *testing.T, text, first string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		col := strings.Index(l, "#")
		if col < 0 || strings.TrimSpace(l[:col]) != "" || l[col+1:] != first {
			continue
		}
		lines[i] = l[:col] + l[col+1:]
		for j := i + 1; j < len(lines) && len(lines[j]) > col+3 && strings.TrimSpace(lines[j][:col]) == "" && lines[j][col:col+3] == "#  "; j++ {
			lines[j] = lines[j][:col] + lines[j][col+1:]
		}
		return strings.Join(lines, "\n")
	}
	t.Fatalf("no commented-out line %q", first)
	return ""
}

// plainSwitched is deploy/kubernetes switched to the zfs backend as its
// comments say: --backend=zfs, the csi-resizer and its RBAC rule
// uncommented, allowVolumeExpansion true.
func plainSwitched(t *testing.T) []any {
	t.Helper()
	edits := map[string]func(string) string{
		"dotmesh.yaml": func(s string) string {
			return uncomment(t, replaceOnce(t, s, "--backend=files", "--backend=zfs"), "- name: csi-resizer")
		},
		"rbac.yaml": func(s string) string { return uncomment(t, s, `- apiGroups: [""]`) },
		"storageclass.yaml": func(s string) string {
			return replaceOnce(t, s, "allowVolumeExpansion: false", "allowVolumeExpansion: true")
		},
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	var objs []any
	for _, f := range files {
		text := string(readFile(t, f))
		if e := edits[filepath.Base(f)]; e != nil {
			text = e(text)
			delete(edits, filepath.Base(f))
		}
		o, err := decodeAll(f+" (zfs)", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	if len(edits) > 0 {
		t.Fatalf("deploy/kubernetes lacks %v", edits)
	}
	return objs
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q occurs %d times, want once", old, strings.Count(s, old))
	}
	return strings.Replace(s, old, new, 1)
}

// sameDeployment: the DaemonSet's containers, the ClusterRole's rules and
// the StorageClass's expansion agree between two deployments.
func sameDeployment(t *testing.T, what string, a, b []any) {
	t.Helper()
	ca, cb := one[*appsv1.DaemonSet](t, a).Spec.Template.Spec.Containers, one[*appsv1.DaemonSet](t, b).Spec.Template.Spec.Containers
	names := func(cs []corev1.Container) (n []string) {
		for _, c := range cs {
			n = append(n, c.Name)
		}
		return n
	}
	if !slices.Equal(names(ca), names(cb)) {
		t.Errorf("%s: containers %v and %v", what, names(ca), names(cb))
	}
	for _, c := range ca {
		if c.Name == "dm" {
			continue // its env and mounts differ on purpose (NODE_IP, values)
		}
		for _, d := range cb {
			if d.Name == c.Name && !reflect.DeepEqual(c, d) {
				t.Errorf("%s: container %s differs:\n%+v\n%+v", what, c.Name, c, d)
			}
		}
	}
	if ra, rb := one[*rbacv1.ClusterRole](t, a).Rules, one[*rbacv1.ClusterRole](t, b).Rules; !reflect.DeepEqual(ra, rb) {
		t.Errorf("%s: ClusterRole rules differ:\n%v\n%v", what, ra, rb)
	}
	if ra, rb := one[*rbacv1.Role](t, a).Rules, one[*rbacv1.Role](t, b).Rules; !reflect.DeepEqual(ra, rb) {
		t.Errorf("%s: leader-election Role rules differ:\n%v\n%v", what, ra, rb)
	}
	exp := func(objs []any) bool {
		sc := one[*storagev1.StorageClass](t, objs)
		return sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
	}
	if exp(a) != exp(b) {
		t.Errorf("%s: allowVolumeExpansion %v and %v", what, exp(a), exp(b))
	}
}

var (
	helpOnce sync.Once
	helpText string
	helpErr  error
)

// serveHelp is `dm serve --help` of dm built from this checkout.
func serveHelp(t *testing.T) string {
	t.Helper()
	helpOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dotmesh-deploy-test")
		if err != nil {
			helpErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "dm")
		if out, err := exec.Command("go", "-C", "..", "build", "-o", bin, "./cmd/dm").CombinedOutput(); err != nil {
			helpErr = fmt.Errorf("building dm: %v: %s", err, out)
			return
		}
		out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
		helpText, helpErr = string(out), err
	})
	if helpErr != nil {
		t.Fatal(helpErr)
	}
	return helpText
}

// make-secrets.sh makes certificates that verify for what the manifests
// use them for, and a key dm accepts.
func TestMakeSecrets(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("make-secrets.sh needs openssl (apt-get install openssl)")
	}
	dir := filepath.Join(t.TempDir(), "s")
	out, err := exec.Command("kubernetes/make-secrets.sh", dir, "node-a.internal", "10.0.0.7", "*.nodes.example").CombinedOutput()
	if err != nil {
		t.Fatalf("make-secrets.sh: %v\n%s", err, out)
	}
	for _, s := range []string{"dotmesh-admin-key", "dotmesh-node-tls", "dotmesh-etcd-tls"} {
		if !strings.Contains(string(out), "create secret generic "+s+" ") {
			t.Errorf("make-secrets.sh prints no command for Secret %s:\n%s", s, out)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(dir, "ca.crt")))
	verify := func(file, host string, usage x509.ExtKeyUsage) {
		t.Helper()
		blk, _ := pem.Decode(readFile(t, filepath.Join(dir, file)))
		if blk == nil {
			t.Fatalf("%s holds no PEM", file)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s for %q: %v", file, host, err)
		}
	}
	for _, h := range []string{"node-a.internal", "10.0.0.7", "n3.nodes.example"} {
		verify("node.crt", h, x509.ExtKeyUsageServerAuth)
	}
	verify("node.crt", "", x509.ExtKeyUsageClientAuth)
	for _, h := range []string{"dotmesh-etcd-2.dotmesh-etcd.dotmesh.svc", "dotmesh-etcd.dotmesh.svc.cluster.local", "127.0.0.1"} {
		verify("etcd.crt", h, x509.ExtKeyUsageServerAuth)
	}
	verify("etcd.crt", "", x509.ExtKeyUsageClientAuth) // peers
	verify("etcd-client.crt", "", x509.ExtKeyUsageClientAuth)
	if k := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "admin-api-key")))); len(k) < 32 {
		t.Errorf("admin key of %d characters; dm wants at least 32", len(k))
	}
	if st, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v %v; want mode 0600", st, err)
	}
	// Again: the CA and key stay, the certificates are made anew.
	ca := readFile(t, filepath.Join(dir, "ca.crt"))
	if out, err := exec.Command("kubernetes/make-secrets.sh", dir, "node-b").CombinedOutput(); err != nil {
		t.Fatalf("make-secrets.sh again: %v\n%s", err, out)
	}
	if !bytes.Equal(ca, readFile(t, filepath.Join(dir, "ca.crt"))) {
		t.Error("a second run replaced the CA; nodes with certificates of the first would stop trusting each other")
	}
	verify("node.crt", "node-b", x509.ExtKeyUsageServerAuth)
	if out, err := exec.Command("kubernetes/make-secrets.sh", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "usage:") {
		t.Errorf("make-secrets.sh without hosts: %v %s; want a usage line", err, out)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
