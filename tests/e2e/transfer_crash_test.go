package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTransferKilledAndResumed pushes 200 MiB in four commits, SIGKILLs
// the receiving node once the first commit and part of the next have
// arrived, restarts it, and re-runs the push: nothing partial was
// visible, neither the completed commit nor the chunks of the cut one
// that b had stored are sent again (chunk have/want), and the result is
// byte-identical.
func TestTransferKilledAndResumed(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "big")
	dir := e.pathOn(a, "big.data")
	const per = 50 << 20
	for i := range 4 {
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("part%d", i)), randomBytes(uint64(i+10), per), 0o644))
		e.commitOn(a, "big", fmt.Sprintf("part %d", i))
	}

	push := e.cmd("--remote", "a", "push", "b", "big", "--json")
	var out, errb bytes.Buffer
	push.Stdout, push.Stderr = &out, &errb
	must(t, push.Start())
	done, exited := make(chan error, 1), make(chan struct{})
	go func() { done <- push.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			push.Process.Kill() // our own child, by PID
			<-exited
		}
	})
	var state struct {
		Exists bool     `json:"exists"`
		Have   []string `json:"have"`
	}
	// Wait for a commit to arrive and for b to have stored (published) a
	// good part of the next one: the dump backend publishes a receive's
	// verified chunks every 32 MiB.
	objects := filepath.Join(b.data, "dump", "store", "packs")
	const partial = 24 << 20
	start := time.Now()
	for len(state.Have) == 0 || storedBytes(objects) < int64(len(state.Have))*per+partial {
		select {
		case err := <-done:
			t.Fatalf("the push ended before b had a commit and part of another (err %v): %s %s", err, out.String(), errb.String())
		default:
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatal("no commit arrived on b in 2 minutes")
		}
		b.get("/v1/dots/admin/big/transfer?branch=master", b.key, &state)
		time.Sleep(10 * time.Millisecond)
	}
	b.kill()
	if err := <-done; err == nil {
		t.Fatalf("the push succeeded although b was killed mid-way: %s", out.String())
	}
	stored := storedBytes(objects)
	t.Logf("killed b after %s with %d commit(s) and %d object bytes there; push said: %s", time.Since(start).Round(time.Millisecond), len(state.Have), stored, bytes.TrimSpace(errb.Bytes()))

	b.start()
	if r := e.dm("--remote", "b", "list", "--json"); r.code != 0 || bytes.Contains([]byte(r.out), []byte(`"big"`)) {
		t.Fatalf("after the crash b lists a partial dot: %v", r)
	}
	t0 := time.Now()
	s := e.transfer(a, "push", "b", "big")
	t.Logf("resumed push: %+v in %s", s, time.Since(t0).Round(time.Millisecond))
	if s.Skipped < 1 || s.Commits+s.Skipped != 4 || s.Bytes > int64(4-s.Skipped)*per+per/8 {
		t.Fatalf("resumed push sent %d commits (%d bytes), skipped %d; want the arrived ones skipped", s.Commits, s.Bytes, s.Skipped)
	}
	// Chunk-level resume: what b had stored of the cut commit is not sent
	// again either, so the re-run sends less than the commits it sends.
	t.Logf("resumed push sent %d bytes for %d commits (%d bytes of data); %d objects were already on b", s.Bytes, s.Commits, int64(s.Commits)*per, s.ObjectsHeld)
	if s.ObjectsHeld == 0 || s.Bytes > 4*per-stored+per/8 || s.Bytes > int64(s.Commits)*per-partial/2 {
		t.Fatalf("resumed push sent %d bytes although b held %d bytes of objects (%d commits of %d bytes to send)", s.Bytes, stored, s.Commits, per)
	}
	if !sameTree(readTree(t, dir), readTree(t, e.pathOn(b, "big.data"))) {
		t.Fatal("b's tree differs from a's after the resumed push")
	}
	if ids(e.logOn(a, "big")) != ids(e.logOn(b, "big")) {
		t.Fatal("histories differ after the resumed push")
	}
}

// storedBytes sums the pack files of a dump store.
func storedBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestTransferTLS serves b over HTTPS with a certificate from a CA made
// here; the remote pins that CA. A remote pinned to another CA fails.
func TestTransferTLS(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile := makeCA(t, dir, "127.0.0.2")
	otherCA, _, _ := makeCA(t, filepath.Join(dir, "other"), "127.0.0.2")
	a := startServe(t, "a", "127.0.0.1")
	b := &serveNode{}
	b = startServeTLS(t, "b", "127.0.0.2", caPEM, certFile, keyFile)
	e := newEnv(t)
	e.addRemote(a)
	must(t, os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "other.pem"), otherCA, 0o644))
	e.addRemote(b, "--ca-cert", filepath.Join(dir, "ca.pem"))

	e.extra = []string{"DOTMESH_PASSWORD=" + b.key}
	e.fails("certificate", "remote", "add", "evil", "admin@"+b.addr, "--ca-cert", filepath.Join(dir, "other.pem"))
	e.fails("", "remote", "add", "plain", "admin@"+b.addr)
	e.extra = nil

	e.on(a, "init", "app")
	writeFile(t, filepath.Join(e.pathOn(a, "app"), "f"), "over TLS")
	e.commitOn(a, "app", "one")
	if s := e.transfer(a, "push", "b", "app"); s.Commits != 1 {
		t.Fatalf("push over TLS: %+v", s)
	}
	if got, _ := os.ReadFile(filepath.Join(e.pathOn(b, "app"), "f")); string(got) != "over TLS" {
		t.Fatalf("b has %q", got)
	}
}

func startServeTLS(t *testing.T, name, ip string, caPEM []byte, cert, key string, extra ...string) *serveNode {
	t.Helper()
	// startServe waits on plain HTTP; start by hand with the CA known.
	l, err := net.Listen("tcp", ip+":0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	d := t.TempDir()
	n := &serveNode{t: t, name: name, addr: addr, data: filepath.Join(d, "data"), log: filepath.Join(d, "serve.log"), caPEM: caPEM}
	n.args = append([]string{"serve", "--data-dir", n.data, "--listen", addr, "--tls-cert", cert, "--tls-key", key}, extra...)
	if serveHasDockerFlag {
		n.args = append(n.args, "--docker-socket", "")
	}
	n.start()
	t.Cleanup(n.kill)
	k, err := os.ReadFile(filepath.Join(n.data, "admin-api-key"))
	must(t, err)
	n.key = string(bytes.TrimSpace(k))
	return n
}

// makeCA writes a CA and a server certificate for ips into dir and
// returns the CA's PEM and the certificate and key files.
func makeCA(t *testing.T, dir string, ips ...string) ([]byte, string, string) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o700))
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dotmesh test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	ca, err := x509.ParseCertificate(caDER)
	must(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	var addrs []net.IP
	for _, ip := range ips {
		addrs = append(addrs, net.ParseIP(ip))
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ips[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: addrs,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	must(t, err)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o600))
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}
