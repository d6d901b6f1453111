package mqtt_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/edge"
	"github.com/fleetgate/fleetgate/edge/mqtt"
	"github.com/fleetgate/fleetgate/edge/uplink"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// certs makes a CA, a server certificate for 127.0.0.1 and a client
// certificate with openssl, in dir.
func certs(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=fleetgate test CA",
		"-keyout", "ca.key", "-out", "ca.pem")
	if err := os.WriteFile(filepath.Join(dir, "san.ext"), []byte("subjectAltName=IP:127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"server", "client"} {
		run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN="+name, "-keyout", name+".key", "-out", name+".csr")
		args := []string{"x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
			"-days", "1", "-out", name + ".pem"}
		if name == "server" {
			args = append(args, "-extfile", "san.ext")
		}
		run(args...)
	}
	p := func(f string) string { return filepath.Join(dir, f) }
	return p("ca.pem"), p("server.pem"), p("server.key"), p("client.pem"), p("client.key")
}

// TestTLSClientCertificate: against a private Mosquitto that requires a
// client certificate, the uplink connects with one and sends its records;
// without one it cannot connect.
func TestTLSClientCertificate(t *testing.T) {
	ca, sc, sk, cc, ck := certs(t, t.TempDir())
	b := testenv.StartMosquitto(t, testenv.MosquittoOptions{Persistence: true, TLS: &testenv.MosquittoTLS{CA: ca, Cert: sc, Key: sk}})
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	url := "ssl://127.0.0.1:" + strconv.Itoa(b.Port)

	f := newFixture(t)
	f.append(edge.PositionRecord(telemetry.Position{UnixMs: 1795773600000, LatE7: 1, LonE7: 2}))
	var ctr edge.Counters
	s, err := uplink.New(uplink.Config{VehicleID: f.vehicle}, f.outbox, nil, &ctr)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := mqtt.New(mqtt.Config{URL: url, Namespace: f.ns, TLS: &tls.Config{RootCAs: roots},
		ConnectTimeout: 2 * time.Second, Backoff: edge.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}}, f.vehicle, s, nil, &ctr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bare.Run(ctx) }()
	f.waitFor("refused connections without a client certificate", func() bool { return ctr.Snapshot()["uplink.connect_errors"] >= 2 })
	cancel()
	<-done
	if bare.Connected() || ctr.Snapshot()["uplink.connects"] != 0 {
		t.Fatal("connected without a client certificate")
	}

	s, err = uplink.New(uplink.Config{VehicleID: f.vehicle}, f.outbox, nil, &f.ctr)
	if err != nil {
		t.Fatal(err)
	}
	u, err := mqtt.New(mqtt.Config{URL: url, Namespace: f.ns,
		TLS: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}, f.vehicle, s, nil, &f.ctr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go u.Run(ctx)
	f.waitFor("a TLS connection", u.Connected)
	f.waitFor("the broker's PUBACK of a batch over TLS", func() bool { return f.ctr.Snapshot()["uplink.pubacks"] > 0 })
}
