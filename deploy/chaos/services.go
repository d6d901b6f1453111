package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// Postgres is a private PostgreSQL cluster for one test (initdb, trust
// authentication, a free port), so that it can be stopped in immediate
// mode and started again without touching the shared server. As root it
// runs as the postgres user, which owns its directory.
type Postgres struct {
	Port int
	Dir  string // the cluster's data directory
	bin  string
	cred *syscall.Credential // the postgres user's, when the test runs as root
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// StartPostgres makes and starts a private cluster; it is stopped when the
// test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		t.Fatalf("PostgreSQL server binaries not found (apt-get install postgresql): %v", err)
	}
	base, err := os.MkdirTemp("", "fleetgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // the postgres user must reach its data directory
		t.Fatal(err)
	}
	p := &Postgres{Port: testenv.FreePort(t), Dir: filepath.Join(base, "data"), bin: bin, t: t}
	if err := os.Mkdir(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("as root, the cluster runs as the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(p.Dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.command("initdb", "-D", p.Dir, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = ''\nmax_connections = 60\n", p.Port)
	f, err := os.OpenFile(filepath.Join(p.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p.log, err = os.Create(filepath.Join(base, "postgres.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop(syscall.SIGINT) // fast shutdown
		if t.Failed() {
			out, _ := os.ReadFile(p.log.Name())
			t.Logf("---- private PostgreSQL log ----\n%s", out[max(0, len(out)-8000):])
		}
		p.log.Close()
	})
	p.Start()
	return p
}

// pgBin returns the directory of the PostgreSQL server binaries.
func pgBin() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return "", fmt.Errorf("no initdb in pg_config --bindir or /usr/lib/postgresql/*/bin")
	}
	return filepath.Dir(m[len(m)-1]), nil
}

// command returns one of the cluster's programs with args, run as the
// postgres user when the test runs as root.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(p.bin, name), args...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	return c
}

// URL returns the URL of database db on the cluster.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// Start starts the server and waits until it takes connections.
func (p *Postgres) Start() {
	p.t.Helper()
	p.cmd = p.command("postgres", "-D", p.Dir)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start postgres: %v", err)
	}
	done := make(chan struct{})
	p.done = done
	go func(c *exec.Cmd) {
		c.Wait()
		close(done)
	}(p.cmd)
	testenv.Eventually(p.t, 60*time.Second, "the private PostgreSQL taking connections", func() error {
		select {
		case <-done:
			p.t.Fatalf("the private PostgreSQL exited at start; see its log")
		default:
		}
		out, err := p.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-q").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %v %s", err, out)
		}
		return nil
	})
}

// StopImmediate stops the server in immediate mode (SIGQUIT to the
// postmaster, which is what pg_ctl stop -m immediate sends: no checkpoint,
// every connection cut, crash recovery at the next start) and waits for it
// to exit.
func (p *Postgres) StopImmediate() {
	p.t.Helper()
	p.stop(syscall.SIGQUIT)
}

func (p *Postgres) stop(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Redis is a private redis-server for one test, on a free port, that can be
// killed and started again.
type Redis struct {
	Port int
	dir  string
	t    testing.TB
	proc *testenv.Proc
	runs int
}

// StartRedis starts a private redis-server (no persistence: a restart
// comes back empty, as a lost cache would).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{Port: testenv.FreePort(t), dir: t.TempDir(), t: t}
	r.Start()
	return r
}

// URL returns redis://127.0.0.1:port/0.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start starts the server and waits until it listens.
func (r *Redis) Start() {
	r.t.Helper()
	r.runs++
	r.proc = testenv.StartProcess(r.t, r.dir, fmt.Sprintf("redis-%d", r.runs), "redis-server", nil,
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir)
	testenv.Eventually(r.t, 20*time.Second, "the private redis-server listening", func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}, r.proc)
}

// Kill kills the server with SIGKILL and waits for it to be gone.
func (r *Redis) Kill() {
	r.t.Helper()
	r.proc.Kill()
}

// Cloud is one cloud-server process (a replica), restartable with the same
// configuration (and so the same MQTT client id and broker session).
type Cloud struct {
	API      cloudapi.Client
	ClientID string
	Proc     *testenv.Proc
	t        testing.TB
	dir, bin string
	env      []string
	runs     int
}

// CloudOptions configure a Cloud.
type CloudOptions struct {
	DatabaseURL, RedisURL, RedisPrefix, BrokerURL, Namespace string
	ClientID                                                 string
	Env                                                      []string // more variables
}

// StartCloud starts a cloud-server replica and waits until it is ready.
func StartCloud(t testing.TB, o CloudOptions) *Cloud {
	t.Helper()
	port := testenv.FreePort(t)
	c := &Cloud{t: t, dir: t.TempDir(), bin: filepath.Join(testenv.Binaries(t), "cloud-server"), ClientID: o.ClientID,
		API: cloudapi.Client{Base: "http://127.0.0.1:" + strconv.Itoa(port)}}
	c.env = append([]string{"DATABASE_URL=" + o.DatabaseURL, "REDIS_URL=" + o.RedisURL, "REDIS_PREFIX=" + o.RedisPrefix,
		"MQTT_URL=" + o.BrokerURL, "MQTT_NAMESPACE=" + o.Namespace, "MQTT_CLIENT_ID=" + o.ClientID,
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "LOG_LEVEL=info"}, o.Env...)
	c.Start()
	return c
}

// Start (re)starts the replica and waits until it is ready.
func (c *Cloud) Start() {
	c.t.Helper()
	c.runs++
	c.Proc = testenv.StartProcess(c.t, c.dir, fmt.Sprintf("cloud-%s-%d", c.ClientID, c.runs), c.bin, c.env, "run")
	e2e.WaitReady(c.t, 60*time.Second, c.API, c.Proc)
	if c.API.Token == "" {
		c.API.Token = e2e.Token(c.t, c.Proc)
	}
}

// Kill kills the replica with SIGKILL and waits for it to be gone.
func (c *Cloud) Kill() {
	c.t.Helper()
	c.Proc.Kill()
}

// Ready returns the replica's GET /ready status code and body.
func (c *Cloud) Ready(ctx context.Context) (int, string, error) {
	var v map[string]any
	err := c.API.Get(ctx, "/ready", &v)
	if err == nil {
		return 200, fmt.Sprint(v), nil
	}
	return 0, err.Error(), err
}
