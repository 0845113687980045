package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 that is its own CA, and
// its key, into dir.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// A light dm, which has no TLS, hands a command for an https node to
// dm-node: the user sees dm-node's output and exit status, and without
// dm-node one line saying what is missing.
func TestLightHandsHTTPSOver(t *testing.T) {
	cert, key := selfSigned(t, t.TempDir())
	dir, _, node, env, run := lightNode(t, "--tls-cert", cert, "--tls-key", key)
	for _, args := range [][]string{{"init", "app"}, {"commit", "--allow-empty", "-m", "one"}} {
		if out, err := run(args...); err != nil {
			t.Fatalf("dm %v: %v: %s", args, err, out)
		}
	}
	if out, err := run("log", "-H"); err != nil || !strings.Contains(out, "one") {
		t.Fatalf("dm log: %v: %q", err, out)
	}
	// The same words and status as dm-node's own, for an answer and for
	// an error.
	runBoth := func(args ...string) (light, full string, lcode, fcode int) {
		t.Helper()
		for i, prog := range []string{filepath.Join(dir, "dm"), node} {
			cmd := exec.Command(prog, args...)
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			code := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("%s %v: %v", prog, args, err)
				}
				code = ee.ExitCode()
			}
			if i == 0 {
				light, lcode = out.String(), code
			} else {
				full, fcode = out.String(), code
			}
		}
		return
	}
	// A FlexVolume call (kubelet runs the light dm as the driver) that
	// reaches the node: the driver config is the client's remote local.
	unmounted := filepath.Join(t.TempDir(), "not-mounted")
	for _, args := range [][]string{{"list"}, {"log", "--dot", "nosuch"}, {"branch", "--dot", "app"}, {"flex", "unmount", unmounted}} {
		light, full, lcode, fcode := runBoth(args...)
		if light != full || lcode != fcode {
			t.Errorf("dm %v: the light dm said %q (status %d), dm-node %q (%d)", args, light, lcode, full, fcode)
		}
	}
	if _, _, code, _ := runBoth("log", "--dot", "nosuch"); code == 0 {
		t.Error("dm log of a dot that is not there succeeded")
	}
	// A remote added with --ca-cert: the key is asked for by dm-node.
	var cfg struct {
		Remotes map[string]struct {
			Address string `json:"address"`
			TLS     bool   `json:"tls"`
		} `json:"remotes"`
	}
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(dir, "config"))), &cfg); err != nil || !cfg.Remotes["local"].TLS {
		t.Fatalf("the config's remote local: %+v, %v", cfg, err)
	}
	addr := cfg.Remotes["local"].Address
	addEnv := append(env[:len(env):len(env)], "DOTMESH_PASSWORD="+strings.TrimSpace(mustRead(t, filepath.Join(dir, "data", "admin-api-key"))))
	add := exec.Command(filepath.Join(dir, "dm"), "remote", "add", "again", "admin@"+addr, "--ca-cert", cert)
	add.Env = addEnv
	if out, err := add.CombinedOutput(); err != nil || !strings.Contains(string(out), "Added remote again") {
		t.Fatalf("dm remote add --ca-cert: %v: %s", err, out)
	}

	if err := os.Rename(node, node+".away"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(node+".away", node)
	for _, args := range [][]string{{"list"}, {"commit", "--allow-empty", "-m", "two"}, {"remote", "add", "x", "admin@" + addr, "--tls"}} {
		out, err := run(args...)
		if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "dm-node, which is neither at "+node) {
			t.Errorf("dm %v over https without dm-node: %v: %q", args, err, out)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
