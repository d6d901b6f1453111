// Package chaos proves Fleetgate's delivery guarantee (DESIGN.md §8) under
// faults: it runs the real chain — simulator on ptys, edge agent, Mosquitto,
// cloud server, PostgreSQL — kills and restarts its parts, cuts its
// connections, and compares what reached PostgreSQL with the simulator's
// ground truth and with what the agent committed. The helpers here start a
// private broker, an MQTT-aware TCP proxy that cuts connections at chosen
// moments, and the chain; the scenarios are in chaos_test.go.
package chaos

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// Broker is a private Mosquitto for one test: its own configuration,
// persistence directory and free port, so that it can be killed and
// restarted without touching the shared broker.
type Broker struct {
	Port int
	Dir  string
	conf string
	proc *e2e.Proc
	t    testing.TB
	runs int
}

// BrokerTLS makes the broker listen with TLS and require a client
// certificate signed by CA.
type BrokerTLS struct {
	CA, Cert, Key string // PEM files
}

// StartBroker starts a private Mosquitto with persistence on (saved every
// second and at shutdown) on a free port; tls may be nil.
func StartBroker(t testing.TB, tls *BrokerTLS) *Broker {
	t.Helper()
	b := NewBroker(t, tls)
	b.Start()
	return b
}

// NewBroker configures a private Mosquitto as StartBroker does, without
// starting it: its port is chosen, nothing listens there until Start.
func NewBroker(t testing.TB, tls *BrokerTLS) *Broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		t.Fatalf("mosquitto not found: apt-get install mosquitto (%v)", err)
	}
	b := &Broker{Port: testenv.FreePort(t), Dir: t.TempDir(), t: t}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n"+
		"autosave_interval 1\nmax_queued_messages 100000\nmax_inflight_messages 100\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n",
		b.Port, b.Dir)
	if os.Geteuid() == 0 {
		// Started as root, Mosquitto would drop to the mosquitto user, which
		// cannot write its persistence into the test's directory.
		conf += "user root\n"
	}
	if tls != nil {
		conf += fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ntls_version tlsv1.2\n", tls.CA, tls.Cert, tls.Key)
	}
	b.conf = filepath.Join(b.Dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// URL returns tcp://127.0.0.1:port.
func (b *Broker) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(b.Port) }

// Addr returns 127.0.0.1:port.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.Port) }

// Start starts the broker and waits until it listens.
func (b *Broker) Start() {
	b.t.Helper()
	b.runs++
	b.proc = e2e.Start(b.t, b.Dir, fmt.Sprintf("mosquitto-%d", b.runs), "mosquitto", nil, "-c", b.conf)
	e2e.Eventually(b.t, 20*time.Second, "mosquitto listening on "+b.Addr(), func() error {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}, b.proc)
}

// Restart stops the broker — with SIGKILL when kill is set (what it had not
// saved is gone, as in a power cut), else with SIGTERM (it saves its state)
// — and starts it again on the same port with the same persistence.
func (b *Broker) Restart(kill bool) {
	b.t.Helper()
	if kill {
		syscall.Kill(b.proc.Cmd.Process.Pid, syscall.SIGKILL)
	}
	b.proc.Stop(b.t)
	b.Start()
}
