package dockertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

const unitPath = "deploy/systemd/fleetgate-edge.service"

// unitDirectives parses a systemd unit into section → key → values (a key
// may repeat; an empty assignment is kept as "").
func unitDirectives(text string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, _ := strings.Cut(line, "=")
			out[section][strings.TrimSpace(k)] = append(out[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

// unitRules are the hardening directives the unit must keep.
var unitRules = []struct{ section, key, value, why string }{
	{"Service", "User", "fleetgate", "a dedicated user"},
	{"Service", "SupplementaryGroups", "dialout", "in the group of the serial devices"},
	{"Service", "StateDirectory", "fleetgate", "the outbox's directory, made for the user"},
	{"Service", "StateDirectoryMode", "0700", "the outbox is the user's alone"},
	{"Service", "ExecStart", "/usr/local/bin/edge-agent run --config /etc/fleetgate/agent.yaml", "the agent"},
	{"Service", "Restart", "always", "restart always"},
	{"Unit", "StartLimitIntervalSec", "0", "never give up restarting"},
	{"Service", "ProtectSystem", "strict", "read-only system"},
	{"Service", "ProtectHome", "yes", "no home directories"},
	{"Service", "PrivateTmp", "yes", "a private /tmp"},
	{"Service", "NoNewPrivileges", "yes", "no privilege escalation"},
	{"Service", "CapabilityBoundingSet", "", "no capabilities"},
	{"Service", "DevicePolicy", "closed", "no devices but those allowed"},
	{"Service", "DeviceAllow", "char-ttyUSB rw", "USB serial adapters (ELM327)"},
	{"Service", "DeviceAllow", "char-ttyACM rw", "CDC-ACM receivers (u-blox)"},
	{"Service", "RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX", "IP and UNIX sockets only"},
	{"Service", "SystemCallFilter", "@system-service", "system calls of a service only"},
	{"Service", "MemoryMax", "128M", "bounded memory"},
	{"Install", "WantedBy", "multi-user.target", "started at boot"},
}

func checkUnit(text string) []string {
	var bad []string
	d := unitDirectives(text)
	for _, r := range unitRules {
		if !slices.Contains(d[r.section][r.key], r.value) {
			bad = append(bad, "["+r.section+"] "+r.key+"="+r.value+" missing ("+r.why+")")
		}
	}
	return bad
}

// verifyUnit runs systemd-analyze verify and security on a copy of the unit
// whose ExecStart points at an executable that exists (verify wants one).
func verifyUnit(t *testing.T, text string) []string {
	t.Helper()
	dir := t.TempDir()
	agent := filepath.Join(dir, "edge-agent")
	fakeTool(t, dir, "edge-agent", "exit 0\n")
	unit := filepath.Join(dir, "fleetgate-edge.service")
	writeFile(t, unit, strings.ReplaceAll(text, "/usr/local/bin/edge-agent", agent))
	var bad []string
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || len(out) > 0 {
		bad = append(bad, "systemd-analyze verify: "+string(out))
	}
	// Exposure ≤ 2.0 of 10 ("OK"); the unit scores 1.6 today.
	if out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=20", unit).CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		bad = append(bad, "systemd-analyze security: "+lines[len(lines)-1])
	}
	return bad
}

func TestSystemdUnit(t *testing.T) {
	text := repoFile(t, unitPath)
	for _, b := range append(checkUnit(text), verifyUnit(t, text)...) {
		t.Error(b)
	}
	for _, m := range []struct{ name, old, new string }{
		{"no NoNewPrivileges", "NoNewPrivileges=yes\n", ""},
		{"writable system", "ProtectSystem=strict", "ProtectSystem=full"},
		{"runs as root", "User=fleetgate\n", ""},
		{"no serial group", "SupplementaryGroups=dialout\n", ""},
		{"no ACM devices", "DeviceAllow=char-ttyACM rw\n", ""},
		{"gives up", "Restart=always", "Restart=on-failure"},
	} {
		if len(checkUnit(mustReplace(t, text, m.old, m.new))) == 0 {
			t.Errorf("%s: not caught", m.name)
		}
	}
	if len(verifyUnit(t, mustReplace(t, text, "Restart=always", "Restart=sometimes"))) == 0 {
		t.Error("systemd-analyze verify accepted Restart=sometimes")
	}
	weak := text
	for _, d := range []string{"ProtectSystem=strict\n", "ProtectHome=yes\n", "PrivateTmp=yes\n", "CapabilityBoundingSet=\n",
		"SystemCallFilter=@system-service\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n", "ProtectKernelTunables=yes\n"} {
		weak = mustReplace(t, weak, d, "")
	}
	if len(verifyUnit(t, weak)) == 0 {
		t.Error("systemd-analyze security accepted a unit without its sandbox")
	}
}

// TestSystemdSysusers creates the unit's user with systemd-sysusers in an
// empty root: fleetgate, no login, home = the state directory, in dialout.
func TestSystemdSysusers(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-sysusers", "--root="+root, filepath.Join(moduleRoot(t), "deploy/systemd/fleetgate.sysusers")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, group := readFile(t, filepath.Join(root, "etc/passwd")), readFile(t, filepath.Join(root, "etc/group"))
	var user []string
	for _, l := range strings.Split(passwd, "\n") {
		if f := strings.Split(l, ":"); f[0] == "fleetgate" {
			user = f
		}
	}
	if len(user) != 7 || user[2] == "0" || user[5] != "/var/lib/fleetgate" || user[6] != "/usr/sbin/nologin" {
		t.Errorf("passwd entry %q: want a system user fleetgate, home /var/lib/fleetgate, no login", user)
	}
	if !strings.Contains("\n"+group, "\ndialout:x:") || !slices.ContainsFunc(strings.Split(group, "\n"), func(l string) bool {
		return strings.HasPrefix(l, "dialout:") && slices.Contains(strings.Split(l[strings.LastIndex(l, ":")+1:], ","), "fleetgate")
	}) {
		t.Errorf("fleetgate is not in dialout:\n%s", group)
	}
}

// TestSystemdAgentConfig: the example configuration is one the agent
// accepts (its healthcheck loads it: exit 2 would be a configuration error)
// and keeps the outbox in the unit's state directory.
func TestSystemdAgentConfig(t *testing.T) {
	text := repoFile(t, "deploy/systemd/agent.yaml")
	var cfg struct {
		DataDir string `yaml:"data_dir"`
		HTTP    struct {
			Listen string `yaml:"listen"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	state := unitDirectives(repoFile(t, unitPath))["Service"]["StateDirectory"]
	if len(state) != 1 || cfg.DataDir != "/var/lib/"+state[0] {
		t.Errorf("data_dir %q is not the unit's state directory /var/lib/%v", cfg.DataDir, state)
	}
	if !strings.HasPrefix(cfg.HTTP.Listen, "127.0.0.1:") {
		t.Errorf("http.listen %q: keep /health and /metrics on the gateway's loopback", cfg.HTTP.Listen)
	}
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "edge-agent"), "healthcheck", "--config", filepath.Join(moduleRoot(t), "deploy/systemd/agent.yaml"))
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code == 2 {
		t.Errorf("the agent refuses deploy/systemd/agent.yaml:\n%s", out)
	}
}
