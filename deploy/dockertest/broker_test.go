package dockertest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

// cloudUser is the cloud's MQTT identity: the CN of its certificate and its
// login on the backend listener (deploy/mosquitto/acl).
const cloudUser = "fleetgate.cloud"

// broker is a private Mosquitto started with deploy/mosquitto/mosquitto.conf
// and deploy/mosquitto/acl, unchanged but for paths and ports.
type broker struct {
	certs         string // make-certs.sh output
	tlsPort       int    // the production 8883 listener
	backendPort   int    // the production 1883 listener (internal network)
	cloudPassword string
	dir           string // the test directory: certificates, password file, data
}

// makeCerts runs deploy/certs/make-certs.sh -o dir with args.
func makeCerts(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(testenv.ModuleRoot(t), "deploy/certs/make-certs.sh"), "-o", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make-certs.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rewrite replaces each old string of the template by its new one and fails
// the test unless each occurs exactly as often as said: a template that
// drifts breaks the test instead of silently testing something else.
func rewrite(t *testing.T, template string, rules []rewriteRule) string {
	t.Helper()
	for _, r := range rules {
		if n := strings.Count(template, r.old); n != r.times {
			t.Fatalf("template: %q occurs %d times, want %d", r.old, n, r.times)
		}
		template = strings.ReplaceAll(template, r.old, r.new)
	}
	return template
}

type rewriteRule struct {
	old, new string
	times    int
}

// brokerOptions say what startProductionBroker makes and changes.
type brokerOptions struct {
	vehicles []string // a certificate each
	revoked  string   // a vehicle whose certificate is issued, then revoked
	// Edits of mosquitto.conf and acl, only for the tests that show the
	// broker tests fail when a rule is broken.
	breakConf, breakACL func(string) string
}

// startProductionBroker makes a CA, the broker's certificate, the cloud's,
// the vehicles' certificates, revokes one if asked, and starts Mosquitto
// with the production configuration and ACL.
func startProductionBroker(t *testing.T, o brokerOptions) *broker {
	t.Helper()
	vehicles, revoked := o.vehicles, o.revoked
	root := testenv.ModuleRoot(t)
	dir := t.TempDir()
	b := &broker{certs: filepath.Join(dir, "certs"), tlsPort: testenv.FreePort(t), backendPort: testenv.FreePort(t),
		cloudPassword: "pw-" + testenv.ID()}
	makeCerts(t, b.certs, "ca")
	makeCerts(t, b.certs, "server", "localhost", "127.0.0.1")
	makeCerts(t, b.certs, "cloud")
	if len(vehicles) > 0 {
		makeCerts(t, b.certs, append([]string{"vehicle"}, vehicles...)...)
	}
	if revoked != "" {
		makeCerts(t, b.certs, "vehicle", revoked)
		// Keep a copy to present to the broker: revoke renames the pair.
		for _, ext := range []string{".crt", ".key"} {
			data, err := os.ReadFile(filepath.Join(b.certs, "vehicles", revoked+ext))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, revoked+ext), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		makeCerts(t, b.certs, "revoke", filepath.Join(b.certs, "vehicles", revoked+".crt"))
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	tmpl := readFile(t, filepath.Join(root, "deploy/mosquitto/mosquitto.conf"))
	acl := filepath.Join(root, "deploy/mosquitto/acl")
	if o.breakACL != nil {
		acl = filepath.Join(dir, "acl")
		writeFile(t, acl, o.breakACL(readFile(t, filepath.Join(root, "deploy/mosquitto/acl"))))
	}
	if o.breakConf != nil {
		tmpl = o.breakConf(tmpl)
	}
	conf := rewrite(t, tmpl, []rewriteRule{
		{"\nlistener 8883\n", fmt.Sprintf("\nlistener %d 127.0.0.1\n", b.tlsPort), 1},
		{"\nlistener 1883\n", fmt.Sprintf("\nlistener %d 127.0.0.1\n", b.backendPort), 1},
		{"/mosquitto/certs/", b.certs + "/", 4},
		{"/mosquitto/run/passwd", passwd, 1},
		{"/mosquitto/config/acl", acl, 1},
		{"/mosquitto/data/", filepath.Join(dir, "data") + "/", 1},
	})
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, " /mosquitto/") {
			t.Fatalf("the generated configuration still names a container path: %q", line)
		}
	}
	b.dir = dir
	// Start it as docker-compose.prod.yml does: its entrypoint makes the
	// password file from MQTT_CLOUD_PASSWORD, then execs mosquitto.
	svc := prodService(t, "mosquitto")
	script := rewrite(t, strings.Join(svc.Command, "\n"), []rewriteRule{
		{"/mosquitto/run/passwd", passwd, 1},
		{"mosquitto -c /mosquitto/config/mosquitto.conf", "mosquitto -c {conf}", 1},
	})
	testenv.StartMosquitto(t, testenv.MosquittoOptions{
		Config: conf, Ports: []int{b.tlsPort, b.backendPort},
		Command: append(append([]string(nil), svc.Entrypoint...), script),
		Env:     []string{"MQTT_CLOUD_PASSWORD=" + b.cloudPassword},
	})
	return b
}

// tlsConfig trusts the test CA and presents certFile/keyFile ("" for none).
func (b *broker) tlsConfig(t *testing.T, certFile, keyFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(b.certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("ca.crt: no certificate")
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// vehicleCert returns the certificate and key files of a vehicle.
func (b *broker) vehicleCert(id string) (string, string) {
	return filepath.Join(b.certs, "vehicles", id+".crt"), filepath.Join(b.certs, "vehicles", id+".key")
}

// connect opens a client; it returns the connect error instead of failing.
func connect(opts *paho.ClientOptions) (paho.Client, error) {
	opts.SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(5 * time.Second).SetOrderMatters(true)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("no CONNACK within 10 s")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

// vehicle connects over TLS with the vehicle's own certificate.
func (b *broker) vehicle(t *testing.T, id string) paho.Client {
	t.Helper()
	crt, key := b.vehicleCert(id)
	c, err := connect(paho.NewClientOptions().AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", b.tlsPort)).
		SetClientID("fleetgate-edge-" + id).SetTLSConfig(b.tlsConfig(t, crt, key)))
	if err != nil {
		t.Fatalf("vehicle %s: connect: %v", id, err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// cloudTLS connects over TLS with the cloud's certificate.
func (b *broker) cloudTLS(t *testing.T, clientID string) paho.Client {
	t.Helper()
	c, err := connect(paho.NewClientOptions().AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", b.tlsPort)).
		SetClientID(clientID).SetTLSConfig(b.tlsConfig(t, filepath.Join(b.certs, "cloud.crt"), filepath.Join(b.certs, "cloud.key"))))
	if err != nil {
		t.Fatalf("cloud over TLS: connect: %v", err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// Replica logins on the backend listener (docker-compose.prod.yml makes
// them; deploy/mosquitto/acl grants them the cloud's topics). The broker
// makes a login the client's id.
const (
	replica1 = "fleetgate.cloud.1"
	replica2 = "fleetgate.cloud.2"
)

// backendURL is a cloud replica's MQTT_URL on the backend listener, with
// its login, as docker-compose.prod.yml writes it.
func (b *broker) backendURL(login string) string {
	return fmt.Sprintf("tcp://%s:%s@127.0.0.1:%d", login, b.cloudPassword, b.backendPort)
}

// cloudBackend connects to the backend listener with a replica's login,
// which is also its client id.
func (b *broker) cloudBackend(t *testing.T, login string) paho.Client {
	t.Helper()
	c, err := connect(paho.NewClientOptions().AddBroker(b.backendURL(login)).SetClientID(login))
	if err != nil {
		t.Fatalf("cloud on the backend listener: connect: %v", err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// inbox records the messages a client receives on its subscriptions.
type inbox struct {
	name string
	mu   sync.Mutex
	got  []string // "topic payload"
	more chan struct{}
}

func newInbox(name string) *inbox { return &inbox{name: name, more: make(chan struct{}, 1)} }

func (in *inbox) handler(_ paho.Client, m paho.Message) {
	in.mu.Lock()
	in.got = append(in.got, m.Topic()+" "+string(m.Payload()))
	in.mu.Unlock()
	select {
	case in.more <- struct{}{}:
	default:
	}
}

// subscribe subscribes c to each filter at QoS 1 and returns the granted QoS
// per filter (0x80: refused).
func subscribe(t *testing.T, c paho.Client, in *inbox, filters ...string) map[string]byte {
	t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.SubscribeMultiple(m, in.handler)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: subscribe %v: %v", in.name, filters, tok.Error())
	}
	return tok.(*paho.SubscribeToken).Result()
}

// until waits for the message "topic payload" and returns everything
// received so far. Mosquitto delivers to a subscriber in the order it routed
// the messages, so what was routed before the awaited message has arrived
// too: that is what lets a test show that a message never came.
func (in *inbox) until(t *testing.T, want string) []string {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		in.mu.Lock()
		got := append([]string(nil), in.got...)
		in.mu.Unlock()
		for _, g := range got {
			if g == want {
				return got
			}
		}
		select {
		case <-in.more:
		case <-deadline.C:
			t.Fatalf("%s: %q never arrived; got %q", in.name, want, got)
		}
	}
}

func publish(t *testing.T, c paho.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// assertNone fails for every received message that contains a forbidden word.
func assertNone(t *testing.T, who string, got []string, forbidden ...string) {
	t.Helper()
	for _, g := range got {
		for _, f := range forbidden {
			if strings.Contains(g, f) {
				t.Errorf("%s received %q: the ACL should have stopped it", who, g)
			}
		}
	}
}

// TestBrokerACL starts the production broker configuration with real
// certificates and proves the security guarantee of docs/GUARANTEES.md on
// it: a vehicle
// publishes only as itself and reads only its own downlink, and the cloud
// identity does its job on both listeners.
func TestBrokerACL(t *testing.T) {
	a, bID := "veh-a"+testenv.ID(), "veh-b"+testenv.ID()
	b := startProductionBroker(t, brokerOptions{vehicles: []string{a, bID}})
	top := func(id, rest string) string { return "fleet/v1/" + id + "/" + rest }

	// The cloud, as the ingester subscribes (shared, QoS 1), over TLS, and a
	// second cloud replica on the backend listener reading every uplink.
	cloudIn, backIn := newInbox("cloud (TLS)"), newInbox("cloud (backend)")
	cloud := b.cloudTLS(t, "fleetgate-cloud-test")
	granted := subscribe(t, cloud, cloudIn, "$share/ingest/fleet/v1/+/up/batch", "$share/ingest/fleet/v1/+", "fleet/v1/+/up/status", "fleet/v1/+/up/cmd-result")
	for f, q := range granted {
		if q != 1 {
			t.Errorf("cloud: subscription %s granted %#x, want QoS 1", f, q)
		}
	}
	back := b.cloudBackend(t, replica1)
	subscribe(t, back, backIn, "fleet/v1/+/up/#")

	vehA, vehB := b.vehicle(t, a), b.vehicle(t, bID)
	inA, inB := newInbox("vehicle A"), newInbox("vehicle B")
	// A asks for everything it can think of; the broker must hand it only
	// its own downlink.
	subscribe(t, vehA, inA, top(a, "down/#"), top(bID, "down/#"), "fleet/v1/+/down/#", top(bID, "up/#"), "fleet/v1/#", "#")
	subscribe(t, vehB, inB, top(bID, "down/#"))

	t.Run("a vehicle publishes as itself", func(t *testing.T) {
		publish(t, vehA, top(a, "up/batch"), "A-own-batch", false)
		publish(t, vehA, "fleet/v1/"+a, "A-own-batch-v2", false) // protocol version 2's topic
		publish(t, vehA, top(a, "up/status"), "A-status", true)
		cloudIn.until(t, top(a, "up/batch")+" A-own-batch")
		cloudIn.until(t, "fleet/v1/"+a+" A-own-batch-v2")
		cloudIn.until(t, top(a, "up/status")+" A-status")
		backIn.until(t, top(a, "up/status")+" A-status")
	})

	t.Run("a vehicle cannot publish as another", func(t *testing.T) {
		publish(t, vehA, top(bID, "up/batch"), "A-spoofs-B-batch", false)
		publish(t, vehA, top(bID, "up/status"), "A-spoofs-B-status", true)
		publish(t, vehA, top(bID, "up/cmd-result"), "A-spoofs-B-result", false)
		publish(t, vehA, "fleet/v1/x/up/batch", "A-spoofs-x", false)
		publish(t, vehA, "fleet/v1/"+bID, "A-spoofs-B-batch-v2", false)
		publish(t, vehA, top(a, "up/batch"), "A-barrier-1", false)
		assertNone(t, "cloud (TLS)", cloudIn.until(t, top(a, "up/batch")+" A-barrier-1"), "spoofs")
		assertNone(t, "cloud (backend)", backIn.until(t, top(a, "up/batch")+" A-barrier-1"), "spoofs")
	})

	t.Run("a vehicle cannot write any downlink", func(t *testing.T) {
		publish(t, vehA, top(bID, "down/ack"), "A-forges-B-ack", false)
		publish(t, vehA, top(a, "down/ack"), "A-forges-own-ack", false)
		publish(t, cloud, top(bID, "down/ack"), "B-barrier", false)
		assertNone(t, "vehicle B", inB.until(t, top(bID, "down/ack")+" B-barrier"), "forges")
		publish(t, cloud, top(a, "down/ack"), "A-barrier-2", false)
		assertNone(t, "vehicle A", inA.until(t, top(a, "down/ack")+" A-barrier-2"), "forges")
	})

	t.Run("a vehicle reads only its own downlink", func(t *testing.T) {
		publish(t, cloud, top(bID, "down/ack"), "ack-for-B", false)
		publish(t, cloud, top(bID, "down/cmd"), "cmd-for-B", false)
		publish(t, vehB, top(bID, "up/batch"), "B-batch", false)
		// B's batch has been routed once the cloud has it; the cloud's next
		// message to A is routed after it.
		cloudIn.until(t, top(bID, "up/batch")+" B-batch")
		inB.until(t, top(bID, "down/cmd")+" cmd-for-B")
		publish(t, back, top(a, "down/cmd"), "cmd-for-A", false)
		assertNone(t, "vehicle A", inA.until(t, top(a, "down/cmd")+" cmd-for-A"), "for-B", "B-batch", "B-status")
	})

	t.Run("a spoofed retained status is not kept", func(t *testing.T) {
		late := newInbox("late subscriber")
		lc := b.cloudBackend(t, replica2) // the TLS identity is busy: one connection per identity
		// B's retained status would be sent before A's: filters are handled in order.
		subscribe(t, lc, late, top(bID, "up/status"))
		subscribe(t, lc, late, top(a, "up/status"))
		assertNone(t, "late subscriber", late.until(t, top(a, "up/status")+" A-status"), "spoofs")
	})

	t.Run("the cloud acks and commands on both listeners", func(t *testing.T) {
		publish(t, cloud, top(a, "down/ack"), "ack-from-tls", false)
		publish(t, back, top(a, "down/cmd"), "cmd-from-backend", false)
		got := inA.until(t, top(a, "down/cmd")+" cmd-from-backend")
		inA.until(t, top(a, "down/ack")+" ack-from-tls")
		for _, g := range got {
			if !strings.HasPrefix(g, top(a, "down/")) {
				t.Errorf("vehicle A received %q, outside its downlink", g)
			}
		}
	})
}

// TestBrokerRefusesStrangers: without a certificate of the fleet CA, or with
// a revoked one, or anonymously, or with a wrong password, nobody connects.
func TestBrokerRefusesStrangers(t *testing.T) {
	a := "veh-a" + testenv.ID()
	revoked := "veh-r" + testenv.ID()
	b := startProductionBroker(t, brokerOptions{vehicles: []string{a}, revoked: revoked})
	other := t.TempDir()
	makeCerts(t, other, "ca")
	makeCerts(t, other, "vehicle", a) // same name, foreign CA
	tlsURL := fmt.Sprintf("ssl://127.0.0.1:%d", b.tlsPort)
	revokedDir := b.dir

	for _, tc := range []struct {
		name string
		opts func() *paho.ClientOptions
	}{
		{"plain MQTT on the TLS port", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", b.tlsPort))
		}},
		{"TLS without a client certificate", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(tlsURL).SetTLSConfig(b.tlsConfig(t, "", ""))
		}},
		{"TLS without a certificate but a username", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(tlsURL).SetTLSConfig(b.tlsConfig(t, "", "")).
				SetUsername(cloudUser).SetPassword(b.cloudPassword)
		}},
		{"a certificate of another CA", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(tlsURL).SetTLSConfig(b.tlsConfig(t,
				filepath.Join(other, "vehicles", a+".crt"), filepath.Join(other, "vehicles", a+".key")))
		}},
		{"a revoked certificate", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(tlsURL).SetTLSConfig(b.tlsConfig(t,
				filepath.Join(revokedDir, revoked+".crt"), filepath.Join(revokedDir, revoked+".key")))
		}},
		{"anonymous on the backend listener", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", b.backendPort))
		}},
		{"the cloud's login with a wrong password", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", b.backendPort)).
				SetUsername(cloudUser).SetPassword("wrong")
		}},
		{"a vehicle's name without a password on the backend listener", func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", b.backendPort)).SetUsername(a)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := connect(tc.opts().SetClientID("stranger-" + testenv.ID()))
			if err == nil {
				c.Disconnect(0)
				t.Fatal("connected; the broker should have refused")
			}
		})
	}
	// The same certificates of the fleet CA do connect: the refusals above
	// are about the credentials, not a broken broker.
	b.vehicle(t, a)
	b.cloudBackend(t, replica2)
}

// TestBrokerTestsCatchAWeakACL runs the checks of TestBrokerACL and
// TestBrokerRefusesStrangers against a broker whose ACL lets any vehicle
// write any uplink and read any downlink, and that admits anonymous clients:
// the same observations now see the spoofed batch, the foreign ack and the
// anonymous connection, so those tests would fail on such a configuration.
func TestBrokerTestsCatchAWeakACL(t *testing.T) {
	a, bID := "veh-a"+testenv.ID(), "veh-b"+testenv.ID()
	b := startProductionBroker(t, brokerOptions{
		vehicles: []string{a, bID},
		breakACL: func(acl string) string {
			acl = mustReplace(t, acl, "pattern write fleet/v1/%u/up/#", "pattern write fleet/v1/+/up/#")
			return mustReplace(t, acl, "pattern read fleet/v1/%u/down/#", "pattern read fleet/v1/+/down/#")
		},
		breakConf: func(conf string) string {
			// Bound client ids would refuse anonymous clients too: unbind them.
			conf = mustReplace(t, conf, "protocol mqtt\nuse_username_as_clientid true\n", "protocol mqtt\n")
			return mustReplace(t, conf, "allow_anonymous false", "allow_anonymous true")
		},
	})
	top := func(id, rest string) string { return "fleet/v1/" + id + "/" + rest }
	cloudIn, inA := newInbox("cloud"), newInbox("vehicle A")
	cloud := b.cloudTLS(t, "fleetgate-cloud-weak")
	subscribe(t, cloud, cloudIn, "$share/ingest/fleet/v1/+/up/batch")
	vehA := b.vehicle(t, a)
	subscribe(t, vehA, inA, top(bID, "down/#"))

	publish(t, vehA, top(bID, "up/batch"), "A-spoofs-B-batch", false)
	cloudIn.until(t, top(bID, "up/batch")+" A-spoofs-B-batch")
	publish(t, cloud, top(bID, "down/ack"), "ack-for-B", false)
	inA.until(t, top(bID, "down/ack")+" ack-for-B")
	c, err := connect(paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", b.backendPort)).SetClientID("anon-" + testenv.ID()))
	if err != nil {
		t.Fatalf("anonymous connect to a broker that allows it: %v", err)
	}
	c.Disconnect(0)
}

// replicaSession is a cloud replica as cloud-server connects: its login,
// a persistent session, the shared subscription to the batches; lost
// receives the error when the broker drops the connection.
type replicaSession struct {
	client paho.Client
	in     *inbox
	lost   chan error
}

func (b *broker) replica(t *testing.T, login, clientID string) *replicaSession {
	t.Helper()
	r := &replicaSession{in: newInbox(login), lost: make(chan error, 1)}
	r.client = paho.NewClient(paho.NewClientOptions().AddBroker(b.backendURL(login)).SetClientID(clientID).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { r.lost <- err }))
	if tok := r.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("replica %s: connect: %v", login, tok.Error())
	}
	t.Cleanup(func() { r.client.Disconnect(50) })
	subscribe(t, r.client, r.in, "$share/ingest/fleet/v1/+/up/batch")
	return r
}

// takeOver has a vehicle connect with the replica's client id, as the
// attack of a vehicle stealing a replica's id does (a clean session, which would also discard the
// replica's persistent session), then checks whether the replica is still
// connected and still gets its batches. It reports whether the replica was
// knocked off.
func takeOver(t *testing.T, b *broker, vehicle string, r *replicaSession, victimID string) bool {
	t.Helper()
	crt, key := b.vehicleCert(vehicle)
	atk, err := connect(paho.NewClientOptions().AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", b.tlsPort)).
		SetClientID(victimID).SetTLSConfig(b.tlsConfig(t, crt, key)))
	if err != nil {
		t.Fatalf("vehicle %s with client id %s: connect: %v", vehicle, victimID, err)
	}
	defer atk.Disconnect(50)
	// The vehicle publishes a batch on its own topic: a replica still
	// connected, with its session and subscription, gets it.
	publish(t, atk, "fleet/v1/"+vehicle+"/up/batch", "after-takeover", false)
	select {
	case err := <-r.lost:
		t.Logf("the replica lost its connection: %v", err)
		return true
	case <-time.After(2 * time.Second):
	}
	if !r.client.IsConnectionOpen() {
		return true
	}
	r.in.until(t, "fleet/v1/"+vehicle+"/up/batch after-takeover")
	return false
}

// TestBrokerBindsClientIDs: a vehicle cannot take a cloud replica's client
// id: the broker makes every client's id its identity — the
// certificate's CN, the replica's login — so veh-001 connecting "as"
// fleetgate.cloud.1 is only veh-001, and the replica keeps its connection,
// its session and its batches. Two replicas configured with the same
// client id do not take each other's session either.
func TestBrokerBindsClientIDs(t *testing.T) {
	vehicle := "veh-001" + testenv.ID()
	b := startProductionBroker(t, brokerOptions{vehicles: []string{vehicle}})
	r := b.replica(t, replica1, replica1)
	if takeOver(t, b, vehicle, r, replica1) {
		t.Fatal("a vehicle connecting with the replica's client id knocked the replica off the broker")
	}
	// A second replica misconfigured with the first one's MQTT_CLIENT_ID
	// still gets its own id, its login.
	r2 := b.replica(t, replica2, replica1)
	select {
	case err := <-r.lost:
		t.Fatalf("a second replica with the same client id knocked the first off: %v", err)
	case <-time.After(time.Second):
	}
	veh := b.vehicle(t, vehicle)
	for i := range 6 {
		publish(t, veh, "fleet/v1/"+vehicle+"/up/batch", fmt.Sprintf("b%d", i), false)
	}
	// The share group has two members: each got some of the six.
	time.Sleep(500 * time.Millisecond)
	r.in.mu.Lock()
	n1 := len(r.in.got)
	r.in.mu.Unlock()
	r2.in.mu.Lock()
	n2 := len(r2.in.got)
	r2.in.mu.Unlock()
	if n2 == 0 || n1 < 2 {
		t.Errorf("replica 1 got %d messages, replica 2 %d: want both in the share group", n1, n2)
	}
}

// TestBrokerTestsCatchUnboundClientIDs runs the attack of
// TestBrokerBindsClientIDs against the production configuration without
// use_username_as_clientid: the vehicle knocks the replica off, so that test
// would fail on such a broker (the attack as it was first found).
func TestBrokerTestsCatchUnboundClientIDs(t *testing.T) {
	vehicle := "veh-001" + testenv.ID()
	b := startProductionBroker(t, brokerOptions{vehicles: []string{vehicle},
		breakConf: func(conf string) string {
			return strings.ReplaceAll(mustReplace(t, conf, "use_identity_as_username true\nuse_username_as_clientid true\n", "use_identity_as_username true\n"),
				"protocol mqtt\nuse_username_as_clientid true\n", "protocol mqtt\n")
		}})
	r := b.replica(t, replica1, replica1)
	if !takeOver(t, b, vehicle, r, replica1) {
		t.Fatal("without use_username_as_clientid the vehicle should have knocked the replica off")
	}
}
