package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MosquittoTLS makes a private broker's listener speak TLS and require a
// client certificate signed by CA.
type MosquittoTLS struct {
	CA, Cert, Key string // PEM files
}

// MosquittoOptions say what a private broker is like. The zero value is an
// anonymous plain listener without persistence.
type MosquittoOptions struct {
	// Persistence keeps sessions and queued messages in the broker's Dir,
	// saved every second and on a clean stop, so that they survive Stop and
	// Restart (Kill loses what was not saved yet, as a power cut does).
	Persistence bool
	TLS         *MosquittoTLS
	// MaxInflight is max_inflight_messages (0: Mosquitto's default, 20).
	MaxInflight int
	// MaxQueued is max_queued_messages (0: 100000, enough for any test's
	// backlog; Mosquitto's own default is 1000).
	MaxQueued int
	// Conf holds further configuration lines, appended to the generated ones.
	Conf []string

	// Config, when set, is the whole configuration instead of the generated
	// one, for tests of a shipped configuration. It must listen on Ports
	// (chosen with FreePort; the first becomes Port). Only the line that keeps
	// a broker started as root from dropping to the mosquitto user is added.
	Config string
	Ports  []int
	// Command, when set, starts the broker through a wrapper (a container's
	// entrypoint script, say) instead of "mosquitto -c CONF"; every "{conf}"
	// in it is replaced by the configuration's path. Env is added to the
	// environment of either.
	Command []string
	Env     []string
}

// Mosquitto is a broker of the test's own, on free ports and with its own
// directory, which the test may stop, kill and restart without touching the
// shared broker. It is stopped when the test ends; its log, in Dir, is
// printed when the test fails.
type Mosquitto struct {
	Port  int   // the first listener's port
	Ports []int // every listener's port
	Dir   string
	Conf  string // the configuration file's path

	t    testing.TB
	opts MosquittoOptions
	proc *Proc
	runs int
}

// StartMosquitto starts a private broker and waits until every listener
// accepts connections.
func StartMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	m := NewMosquitto(t, o)
	m.Start()
	return m
}

// NewMosquitto configures a private broker as StartMosquitto does without
// starting it: its ports are chosen and nothing listens there until Start.
func NewMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil && o.Command == nil {
		t.Fatalf("mosquitto not found (deploy/setup.sh installs it): %v", err)
	}
	m := &Mosquitto{Dir: t.TempDir(), t: t, opts: o}
	conf := o.Config
	if conf == "" {
		m.Ports = []int{FreePort(t)}
		m.Port = m.Ports[0]
		conf = m.generate()
	} else {
		if len(o.Ports) == 0 {
			t.Fatal("testenv.NewMosquitto: a Config needs the Ports it listens on")
		}
		m.Ports = o.Ports
	}
	m.Port = m.Ports[0]
	conf += runAsMe(t)
	m.Conf = filepath.Join(m.Dir, "mosquitto.conf")
	if err := os.WriteFile(m.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return m
}

// generate writes the configuration that o asks for.
func (m *Mosquitto) generate() string {
	o := m.opts
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", m.Port),
		"allow_anonymous true",
		"max_connections -1",
		fmt.Sprintf("max_queued_messages %d", orDefault(o.MaxQueued, 100000)),
		// Without it every publish/ack round trip waits for Nagle (~40 ms).
		"set_tcp_nodelay true",
		"log_dest stderr", "log_type error", "log_type warning", "log_type notice",
	}
	if o.MaxInflight > 0 {
		lines = append(lines, fmt.Sprintf("max_inflight_messages %d", o.MaxInflight))
	}
	if o.Persistence {
		lines = append(lines, "persistence true", "persistence_location "+m.Dir+"/", "autosave_interval 1")
	} else {
		lines = append(lines, "persistence false")
	}
	if o.TLS != nil {
		lines = append(lines, "cafile "+o.TLS.CA, "certfile "+o.TLS.Cert, "keyfile "+o.TLS.Key,
			"require_certificate true", "tls_version tlsv1.2")
	}
	lines = append(lines, o.Conf...)
	return strings.Join(lines, "\n") + "\n"
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// runAsMe keeps Mosquitto, started as root, from dropping to the mosquitto
// user, which could not use the test's files.
func runAsMe(t testing.TB) string {
	if os.Geteuid() != 0 {
		return ""
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return "\nuser " + u.Username + "\n"
}

// URL returns tcp://127.0.0.1:Port (ssl:// with TLS).
func (m *Mosquitto) URL() string {
	if m.opts.TLS != nil {
		return "ssl://" + m.Addr()
	}
	return "tcp://" + m.Addr()
}

// Addr returns 127.0.0.1:Port.
func (m *Mosquitto) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.Port) }

// Proc returns the running broker's process (for Eventually's early-exit
// check), nil before Start.
func (m *Mosquitto) Proc() *Proc { return m.proc }

// Start starts the broker and waits until every listener accepts
// connections; a broker that exits first fails the test with its log.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.runs++
	bin, args := "mosquitto", []string{"-c", m.Conf}
	if c := m.opts.Command; c != nil {
		bin, args = c[0], nil
		for _, a := range c[1:] {
			args = append(args, strings.ReplaceAll(a, "{conf}", m.Conf))
		}
	}
	m.proc = StartProcess(m.t, m.Dir, fmt.Sprintf("mosquitto-%d", m.runs), bin, m.opts.Env, args...)
	Eventually(m.t, 30*time.Second, "mosquitto listening on "+m.Addr(), func() error {
		for _, port := range m.Ports {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}, m.proc)
}

// Stop stops the broker with SIGTERM (it saves its state) and waits for it
// to exit.
func (m *Mosquitto) Stop() {
	m.t.Helper()
	m.proc.Stop(m.t)
}

// Kill stops the broker with SIGKILL: what it had not saved is gone.
func (m *Mosquitto) Kill() {
	m.t.Helper()
	m.proc.Kill()
}

// Restart stops the broker (Kill when kill is set, else Stop) and starts it
// again on the same ports with the same configuration and persistence.
func (m *Mosquitto) Restart(kill bool) {
	m.t.Helper()
	if kill {
		m.Kill()
	} else {
		m.Stop()
	}
	m.Start()
}
