package testenv_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fakeTB records what Eventually reports instead of failing the test.
type fakeTB struct{ failed string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	n := 0
	testenv.Eventually(t, time.Minute, "the third poll", func() error {
		if n++; n < 3 {
			return fmt.Errorf("poll %d", n)
		}
		return nil
	})
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
}

func TestEventuallyFailsWithTheLastError(t *testing.T) {
	var f fakeTB
	n := 0
	testenv.Eventually(&f, 50*time.Millisecond, "never", func() error {
		n++
		return fmt.Errorf("poll %d", n)
	})
	if want := fmt.Sprintf("poll %d", n); !strings.Contains(f.failed, "waiting for never") || !strings.HasSuffix(f.failed, want) {
		t.Errorf("failure %q, want one ending with the last error %q", f.failed, want)
	}
}

func TestEventuallyFailsWhenAProcessExits(t *testing.T) {
	p := testenv.StartProcess(t, t.TempDir(), "false", "false", nil)
	var f fakeTB
	start := time.Now()
	testenv.Eventually(&f, time.Hour, "a process that died", func() error { return errors.New("not yet") }, p)
	if !strings.Contains(f.failed, "false exited early") {
		t.Errorf("failure %q, want the early exit named", f.failed)
	}
	if time.Since(start) > 10*time.Minute {
		t.Error("Eventually waited for its deadline despite the exit")
	}
}

func TestBuildOnceThenRemovedByMain(t *testing.T) {
	var bin string
	code := testenv.RunMain(runFunc(func() int {
		bin = testenv.Build(t, "./internal/testenv/testdata/hello")
		if again := testenv.Build(t, "./internal/testenv/testdata/hello"); again != bin {
			t.Errorf("second Build gave %s, want %s", again, bin)
		}
		out, err := exec.Command(bin).Output()
		if err != nil || string(out) != "hello\n" {
			t.Errorf("built program: %q, %v", out, err)
		}
		return 0
	}))
	if code != 0 {
		t.Errorf("exit code %d", code)
	}
	if _, err := os.Stat(filepath.Dir(bin)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the binaries' directory %s is still there after Main: %v", filepath.Dir(bin), err)
	}
}

type runFunc func() int

func (f runFunc) Run() int { return f() }

// conn dials the proxy; the deadline only guards against a hang.
func conn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func echo(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != msg {
		return fmt.Errorf("echoed %q, want %q", b, msg)
	}
	return nil
}

// closed reports whether the other side closed c, reading what it sent
// before.
func closed(c net.Conn) bool {
	_, err := io.Copy(io.Discard, c)
	return err == nil || !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestProxyDownCutAndUp(t *testing.T) {
	p := testenv.StartProxy(t, strings.TrimPrefix(testenv.EchoServer(t), "tcp://"), testenv.ProxyOptions{})
	a := conn(t, p.Addr())
	if err := echo(a, "hello"); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if !closed(a) {
		t.Fatal("Cut left the open connection")
	}
	b := conn(t, p.Addr())
	if err := echo(b, "after the cut"); err != nil {
		t.Fatalf("Cut stopped new connections: %v", err)
	}
	p.SetUp(false)
	if !closed(b) {
		t.Fatal("going down left the open connection")
	}
	if !closed(conn(t, p.Addr())) {
		t.Fatal("a new connection was relayed while down")
	}
	p.SetUp(true)
	if err := echo(conn(t, p.Addr()), "back up"); err != nil {
		t.Fatalf("after coming back up: %v", err)
	}
	if p.Conns() != 3 || p.Cuts() != 2 {
		t.Errorf("Conns %d, Cuts %d; want 3 relayed and 2 cut", p.Conns(), p.Cuts())
	}
}

// recorder is a server that keeps what it receives and answers "ok" to
// every read.
type recorder struct {
	ln  net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func newRecorder(t *testing.T) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					r.mu.Lock()
					r.got.Write(buf[:n])
					r.mu.Unlock()
					if err != nil {
						return
					}
					if _, err := c.Write([]byte("ok")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return r
}

func answers(c net.Conn) bool {
	b := make([]byte, 2)
	_, err := io.ReadFull(c, b)
	return err == nil && string(b) == "ok"
}

func (r *recorder) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

func TestProxyCutAtPattern(t *testing.T) {
	for _, tt := range []struct {
		name   string
		after  bool
		down   bool
		stored []string // what the server may have received ("COM" passes when read apart)
	}{
		{"before", false, false, []string{"BEGIN;COM", "BEGIN;"}},
		{"after", true, false, []string{"BEGIN;COMMIT;"}},
		{"before, going down", false, true, []string{"BEGIN;COM", "BEGIN;"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(t)
			p := testenv.StartProxy(t, r.ln.Addr().String(), testenv.ProxyOptions{})
			cut := p.CutAt(testenv.PatternCut{Dir: testenv.ToTarget, Pattern: []byte("COMMIT"), After: tt.after, Down: tt.down})
			c := conn(t, p.Addr())
			io.WriteString(c, "BEGIN;")
			io.ReadFull(c, make([]byte, 2))
			io.WriteString(c, "COM") // the pattern split between two reads
			time.Sleep(10 * time.Millisecond)
			io.WriteString(c, "MIT;")
			select {
			case <-cut:
			case <-time.After(30 * time.Second):
				t.Fatal("no cut")
			}
			if !closed(c) {
				t.Fatal("the connection survived the cut")
			}
			testenv.Eventually(t, 30*time.Second, "the server's side closed", func() error {
				if got := r.received(); !slices.Contains(tt.stored, got) {
					return fmt.Errorf("server received %q, want one of %q", got, tt.stored)
				}
				return nil
			})
			next := conn(t, p.Addr())
			if tt.down {
				if !closed(next) {
					t.Error("a new connection was relayed after a cut that went down")
				}
			} else if _, err := io.WriteString(next, "x"); err != nil || !answers(next) {
				t.Errorf("a new connection after the cut got no answer (%v)", err)
			}
			if p.Cuts() != 1 {
				t.Errorf("Cuts %d, want 1", p.Cuts())
			}
		})
	}
}

func TestProxyCutAtAnswer(t *testing.T) {
	r := newRecorder(t)
	p := testenv.StartProxy(t, r.ln.Addr().String(), testenv.ProxyOptions{})
	cut := p.CutAt(testenv.PatternCut{Dir: testenv.ToClient, Pattern: []byte("ok")})
	c := conn(t, p.Addr())
	io.WriteString(c, "COMMIT;")
	if !closed(c) {
		t.Fatal("the client got the answer")
	}
	<-cut
	if got := r.received(); got != "COMMIT;" {
		t.Errorf("server received %q", got)
	}
}

// publish is an MQTT 3.1.1 PUBLISH packet, QoS 0.
func publish(topic, payload string) []byte {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	body = append(body, payload...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestProxyCutAfterPublish(t *testing.T) {
	r := newRecorder(t)
	var seen []string
	var mu sync.Mutex
	p := testenv.StartProxy(t, r.ln.Addr().String(), testenv.ProxyOptions{CutAfterPublish: func(topic string) bool {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, topic)
		return strings.HasSuffix(topic, "/up/batch")
	}})
	c := conn(t, p.Addr())
	first, second, third := publish("a/up/status", "s"), publish("a/up/batch", "b"), publish("a/up/batch", "c")
	// One write: the proxy still cuts between the packets.
	if _, err := c.Write(append(append(append([]byte{}, first...), second...), third...)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the cut after the batch", func() error {
		if p.Cuts() != 1 {
			return errors.New("no cut yet")
		}
		return nil
	})
	want := string(first) + string(second)
	testenv.Eventually(t, 30*time.Second, "the server's view", func() error {
		if got := r.received(); got != want {
			return fmt.Errorf("server received %q, want %q", got, want)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, " ") != "a/up/status a/up/batch" {
		t.Errorf("asked about %v", seen)
	}
}

func TestPrivateMosquittoRestartsWithItsState(t *testing.T) {
	m := testenv.StartMosquitto(t, testenv.MosquittoOptions{Persistence: true, MaxInflight: 5, Conf: []string{"retain_available true"}})
	topic := "t" + testenv.ID() + "/retained"
	send := func(payload string) {
		c := connect(t, paho.NewClientOptions().AddBroker(m.URL()))
		if tok := c.Publish(topic, 1, true, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		c.Disconnect(0)
	}
	send("kept")
	m.Restart(false) // SIGTERM: Mosquitto saves its state
	if got := retained(t, m.URL(), topic); got != "kept" {
		t.Errorf("after a clean restart: retained %q, want kept", got)
	}
	time.Sleep(1500 * time.Millisecond) // past the autosave interval
	m.Restart(true)
	if got := retained(t, m.URL(), topic); got != "kept" {
		t.Errorf("after a kill past the autosave: retained %q, want kept", got)
	}
	conf, err := os.ReadFile(m.Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"max_inflight_messages 5", "retain_available true", "persistence true"} {
		if !strings.Contains(string(conf), line+"\n") {
			t.Errorf("configuration lacks %q:\n%s", line, conf)
		}
	}
}

func connect(t *testing.T, o *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(o.SetClientID("fgtest-" + testenv.ID()).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	return c
}

func retained(t *testing.T, url, topic string) string {
	t.Helper()
	c := connect(t, paho.NewClientOptions().AddBroker(url))
	defer c.Disconnect(0)
	got := make(chan string, 1)
	if tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case p := <-got:
		return p
	case <-time.After(5 * time.Second): // a retained message comes with the SUBACK
		return ""
	}
}

func TestPrivateMosquittoRequiresACertificate(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := certificate(t, dir, "ca", nil, nil)
	certificate(t, dir, "server", ca, caKey)
	certificate(t, dir, "client", ca, caKey)
	m := testenv.StartMosquitto(t, testenv.MosquittoOptions{TLS: &testenv.MosquittoTLS{
		CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key"),
	}})
	if !strings.HasPrefix(m.URL(), "ssl://") {
		t.Errorf("URL %s", m.URL())
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	anon := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetTLSConfig(cfg).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := anon.Connect(); tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
		anon.Disconnect(0)
		t.Fatal("a client without a certificate connected")
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificates = []tls.Certificate{pair}
	connect(t, paho.NewClientOptions().AddBroker(m.URL()).SetTLSConfig(cfg)).Disconnect(0)
}

// certificate writes name.crt and name.key in dir: a CA when parent is nil,
// else a certificate for localhost signed by it.
func certificate(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, kind string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
