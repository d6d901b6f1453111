package dockertest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	paho "github.com/eclipse/paho.mqtt.golang"
	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

// prodEnv gives every required variable of docker-compose.prod.yml a value.
var prodEnv = map[string]string{
	"API_DOMAIN": "api.example.com", "ACME_EMAIL": "ops@example.com",
	"POSTGRES_PASSWORD": "pg-secret", "REDIS_PASSWORD": "redis-secret", "MQTT_CLOUD_PASSWORD": "mqtt-secret",
}

// loadCompose loads a compose file as `docker compose` does (compose-go:
// schema validation, interpolation from env, normalization).
func loadCompose(dir, file string, env map[string]string) (*types.Project, error) {
	env = maps.Clone(env) // the loader adds to it
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, file)}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("fleetgate-test", true) })
}

// loadComposeText loads src as file in a temporary copy of the layout.
func loadComposeText(t *testing.T, file, src string, env map[string]string) (*types.Project, error) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, file), src)
	return loadCompose(dir, file, env)
}

// oneShot reports whether the service is a job that runs to completion:
// restart "no" and another service waits for it to complete successfully.
// Such a job has no health check (it exits); everything else must have one.
func oneShot(p *types.Project, name string) bool {
	s := p.Services[name]
	if s.Restart != types.RestartPolicyNo && !strings.HasPrefix(s.Restart, types.RestartPolicyOnFailure) {
		return false
	}
	for _, other := range p.Services {
		if d, ok := other.DependsOn[name]; ok && d.Condition == types.ServiceConditionCompletedSuccessfully {
			return true
		}
	}
	return false
}

func sortedNames(p *types.Project) []string {
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkCommon: health checks and resource limits and reservations on every
// service.
func checkCommon(p *types.Project, fail func(rule, format string, args ...any)) {
	for _, name := range sortedNames(p) {
		s := p.Services[name]
		if !oneShot(p, name) {
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] == "NONE" {
				fail("healthcheck", "%s has no health check", name)
			} else if s.HealthCheck.Interval == nil || s.HealthCheck.Timeout == nil || s.HealthCheck.Retries == nil {
				fail("healthcheck", "%s: the health check needs interval, timeout and retries", name)
			}
		}
		var lim, res *types.Resource
		if s.Deploy != nil {
			lim, res = s.Deploy.Resources.Limits, s.Deploy.Resources.Reservations
		}
		if lim == nil || lim.NanoCPUs <= 0 || lim.MemoryBytes <= 0 {
			fail("resources", "%s: deploy.resources.limits needs cpus and memory", name)
		}
		if res == nil || res.NanoCPUs <= 0 || res.MemoryBytes <= 0 {
			fail("resources", "%s: deploy.resources.reservations needs cpus and memory", name)
		} else if lim != nil && (res.MemoryBytes > lim.MemoryBytes || res.NanoCPUs > lim.NanoCPUs) {
			fail("resources", "%s: reservations exceed limits", name)
		}
	}
}

// healthTest is the health check's command as one string.
func healthTest(s types.ServiceConfig) string {
	if s.HealthCheck == nil {
		return ""
	}
	return strings.Join(s.HealthCheck.Test, " ")
}

func publishedTargets(s types.ServiceConfig) []uint32 {
	var out []uint32
	for _, p := range s.Ports {
		if p.Published != "" {
			out = append(out, p.Target)
		}
	}
	return out
}

func hasBind(s types.ServiceConfig, source, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && filepath.Base(v.Source) == filepath.Base(source) && v.Target == target {
			return true
		}
	}
	return false
}

func waitsFor(s types.ServiceConfig, dep, condition string) bool {
	d, ok := s.DependsOn[dep]
	return ok && d.Condition == condition
}

// checkDevCompose returns the broken rules of docker-compose.yml (item 3).
func checkDevCompose(p *types.Project) []string {
	var bad []string
	fail := func(rule, format string, args ...any) {
		bad = append(bad, "["+rule+"] "+fmt.Sprintf(format, args...))
	}
	want := []string{"cloud", "edge", "mosquitto", "osrm", "osrm-fetch", "osrm-prepare", "postgres", "redis", "sim"}
	if got := sortedNames(p); !slices.Equal(got, want) {
		fail("services", "services %q, want %q", got, want)
		return bad
	}
	checkCommon(p, fail)
	// Ports published for development.
	for name, port := range map[string]uint32{"postgres": 5432, "redis": 6379, "mosquitto": 1883, "cloud": 8000, "osrm": 5000, "edge": 9100} {
		if !slices.Contains(publishedTargets(p.Services[name]), port) {
			fail("ports", "%s does not publish its port %d", name, port)
		}
	}
	// The health check of each service.
	for name, want := range map[string]string{"postgres": "pg_isready", "redis": "redis-cli ping", "mosquitto": "mosquitto_sub",
		"cloud": "http://127.0.0.1:8000/health", "osrm": "/scripts/healthcheck.sh", "edge": "http://127.0.0.1:9100/health"} {
		if !strings.Contains(healthTest(p.Services[name]), want) {
			fail("healthcheck", "%s's health check %q does not use %q", name, healthTest(p.Services[name]), want)
		}
	}
	// The cloud: development image, source mounted, hot reload.
	cloud := p.Services["cloud"]
	if cloud.Build == nil || cloud.Build.Dockerfile != "Dockerfile.cloud" || cloud.Build.Target != "development" {
		fail("cloud", "cloud must be built from Dockerfile.cloud, target development")
	}
	if !hasBind(cloud, p.WorkingDir, "/src") {
		fail("cloud", "cloud must have the source tree mounted on /src")
	}
	if cloud.Environment["MQTT_CLIENT_ID"] == nil || *cloud.Environment["MQTT_CLIENT_ID"] == "" {
		fail("cloud", "cloud needs a fixed MQTT_CLIENT_ID (the container's hostname changes; cloud/README.md)")
	}
	for _, dep := range []string{"postgres", "redis", "mosquitto"} {
		if !waitsFor(cloud, dep, types.ServiceConditionHealthy) {
			fail("cloud", "cloud does not wait for %s to be healthy", dep)
		}
	}
	checkOSRM(p, fail)
	// The simulator and the agent, wired together.
	edge, sim := p.Services["edge"], p.Services["sim"]
	if edge.Build == nil || edge.Build.Dockerfile != "Dockerfile.edge" || edge.Build.Target != "development" ||
		sim.Build == nil || sim.Build.Dockerfile != "Dockerfile.edge" {
		fail("wiring", "edge and sim must be built from Dockerfile.edge (development)")
	}
	if !waitsFor(edge, "sim", types.ServiceConditionHealthy) || !waitsFor(edge, "mosquitto", types.ServiceConditionHealthy) {
		fail("wiring", "edge must wait for a healthy sim and broker")
	}
	simScript := strings.Join(sim.Command, "\n")
	for _, want := range []string{"firmware-sim run", "TCP-LISTEN:4001", "TCP-LISTEN:4002", "veh-001-gps", "veh-001-obd"} {
		if !strings.Contains(simScript, want) {
			fail("wiring", "sim's command lacks %q", want)
		}
	}
	cfg := agentConfig(p, edge)
	for _, want := range []string{"port: tcp://sim:4001", "port: tcp://sim:4002", "url: tcp://mosquitto:1883", "listen: 0.0.0.0:9100", "vehicle_id: veh-001"} {
		if !strings.Contains(cfg, want) {
			fail("wiring", "the agent's configuration lacks %q:\n%s", want, cfg)
		}
	}
	return bad
}

// agentConfig returns the content of the config mounted on the agent's
// /etc/fleetgate/agent.yaml.
func agentConfig(p *types.Project, s types.ServiceConfig) string {
	for _, c := range s.Configs {
		if c.Target == "/etc/fleetgate/agent.yaml" {
			return p.Configs[c.Source].Content
		}
	}
	return ""
}

// checkOSRM: the init jobs download and prepare the extract (MLD) into the
// volume osrm-routed serves, in order.
func checkOSRM(p *types.Project, fail func(rule, format string, args ...any)) {
	fetch, prep, osrm := p.Services["osrm-fetch"], p.Services["osrm-prepare"], p.Services["osrm"]
	if !oneShot(p, "osrm-fetch") || !oneShot(p, "osrm-prepare") {
		fail("osrm", "osrm-fetch and osrm-prepare must be one-shot jobs (restart \"no\", awaited with service_completed_successfully)")
	}
	if !waitsFor(prep, "osrm-fetch", types.ServiceConditionCompletedSuccessfully) || !waitsFor(osrm, "osrm-prepare", types.ServiceConditionCompletedSuccessfully) {
		fail("osrm", "osrm must wait for osrm-prepare, which must wait for osrm-fetch")
	}
	if !strings.Contains(strings.Join(fetch.Entrypoint, " "), "/scripts/fetch.sh") || !strings.Contains(strings.Join(prep.Entrypoint, " "), "/scripts/prepare.sh") {
		fail("osrm", "the jobs must run deploy/osrm/fetch.sh and prepare.sh")
	}
	if prep.NetworkMode != "none" {
		fail("osrm", "osrm-prepare needs no network (network_mode: none)")
	}
	cmd := strings.Join(osrm.Command, " ")
	if !strings.Contains(cmd, "osrm-routed --algorithm mld") || !strings.Contains(cmd, ".osrm") {
		fail("osrm", "osrm must run osrm-routed --algorithm mld on the prepared dataset, runs %q", cmd)
	}
	data := func(s types.ServiceConfig) string {
		for _, v := range s.Volumes {
			if v.Target == "/data" {
				return v.Source
			}
		}
		return ""
	}
	if d := data(fetch); d == "" || d != data(prep) || d != data(osrm) {
		fail("osrm", "the three OSRM services must share one /data volume")
	}
}

// Third-party images are pinned to a release, never latest.
var pinned = regexp.MustCompile(`^[a-z0-9./-]+:[0-9v][0-9A-Za-z.-]*$`)

// checkProdCompose returns the broken rules of docker-compose.prod.yml
// (item 4). raw is the file's text, for the secrets.
func checkProdCompose(p *types.Project, raw string) []string {
	var bad []string
	fail := func(rule, format string, args ...any) {
		bad = append(bad, "["+rule+"] "+fmt.Sprintf(format, args...))
	}
	checkCommon(p, fail)
	checkOSRM(p, fail)
	published := map[string][]string{}
	for _, name := range sortedNames(p) {
		s := p.Services[name]
		if !slices.Contains(s.CapDrop, "ALL") {
			fail("cap_drop", "%s does not drop all capabilities (cap_drop: [ALL])", name)
		}
		if len(s.CapAdd) > 0 {
			fail("cap_drop", "%s adds capabilities back: %q", name, s.CapAdd)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			fail("no-new-privileges", "%s lacks security_opt no-new-privileges:true", name)
		}
		if !s.ReadOnly {
			fail("read_only", "%s has a writable root filesystem", name)
		}
		if !slices.ContainsFunc(s.Tmpfs, func(m string) bool { return strings.HasPrefix(m, "/tmp") }) {
			fail("read_only", "%s has no tmpfs on /tmp", name)
		}
		uid, _, _ := strings.Cut(s.User, ":")
		if uid == "" || uid == "0" || uid == "root" {
			fail("non-root", "%s runs as user %q; every service runs as a non-root UID", name, s.User)
		}
		if s.Privileged || s.NetworkMode == "host" || s.Pid == "host" || s.Ipc == "host" {
			fail("isolation", "%s is privileged or shares a host namespace", name)
		}
		for _, v := range s.Volumes {
			if strings.Contains(v.Source, "docker.sock") {
				fail("isolation", "%s mounts the Docker socket", name)
			}
		}
		if oneShot(p, name) {
			if s.Restart != types.RestartPolicyNo {
				fail("restart", "the job %s must have restart \"no\"", name)
			}
		} else if s.Restart != types.RestartPolicyUnlessStopped && s.Restart != types.RestartPolicyAlways {
			fail("restart", "%s has restart %q, want unless-stopped or always", name, s.Restart)
		}
		if s.Logging == nil || (s.Logging.Driver != "json-file" && s.Logging.Driver != "local") ||
			s.Logging.Options["max-size"] == "" || s.Logging.Options["max-file"] == "" {
			fail("logging", "%s does not rotate its logs (json-file or local with max-size and max-file)", name)
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.Pids <= 0 {
			fail("resources", "%s has no pids limit", name)
		}
		if s.Build == nil && !pinned.MatchString(s.Image) {
			fail("images", "%s's image %q is not pinned to a release", name, s.Image)
		}
		for _, port := range s.Ports {
			published[name] = append(published[name], fmt.Sprintf("%s:%d", port.Published, port.Target))
		}
		if len(s.Expose) > 0 {
			fail("ports", "%s exposes %q; the networks decide who reaches what", name, s.Expose)
		}
	}
	want := map[string][]string{"proxy": {"443:8443"}, "mosquitto": {"8883:8883"}}
	if fmt.Sprint(published) != fmt.Sprint(want) {
		fail("ports", "published ports %v, want only the API behind the proxy and the broker's TLS port: %v", published, want)
	}
	// Networks: the data services live on internal networks only.
	for _, n := range []string{"backend", "web"} {
		if !p.Networks[n].Internal {
			fail("internal", "network %s must be internal", n)
		}
	}
	for _, name := range []string{"postgres", "redis", "osrm", "cloud"} {
		for n := range p.Services[name].Networks {
			if !p.Networks[n].Internal {
				fail("internal", "%s is on network %s, which is not internal", name, n)
			}
		}
	}
	if _, ok := p.Services["mosquitto"].Networks["backend"]; !ok {
		fail("internal", "the broker's backend listener must be on the internal network backend")
	}
	for _, name := range []string{"postgres", "redis", "osrm"} {
		if _, ok := p.Services[name].Networks["backend"]; !ok {
			fail("internal", "%s must be on the internal network backend", name)
		}
	}
	// The cloud replicas: the production image, the backend listener, each
	// with its own login, which the broker makes its client id
	// (use_username_as_clientid): MQTT_CLIENT_ID says the same, fixed and
	// distinct, so replicas never take each other's session.
	ids := map[string]string{}
	for _, name := range []string{"cloud", "cloud-2"} {
		cloud, ok := p.Services[name]
		if !ok {
			fail("cloud", "two cloud replicas, cloud and cloud-2: %s is missing", name)
			continue
		}
		if cloud.Build == nil || cloud.Build.Dockerfile != "Dockerfile.cloud" || cloud.Build.Target != "production" {
			fail("cloud", "%s must be built from Dockerfile.cloud, target production", name)
		}
		id := cloud.Environment["MQTT_CLIENT_ID"]
		if id == nil || *id == "" || strings.Contains(*id, "$") {
			fail("cloud", "%s needs a fixed MQTT_CLIENT_ID (the container's hostname changes; cloud/README.md)", name)
			continue
		}
		if other, dup := ids[*id]; dup {
			fail("cloud", "%s and %s share the MQTT client id %s: they would take each other's broker session", other, name, *id)
		}
		ids[*id] = name
		if u := cloud.Environment["MQTT_URL"]; u == nil || !strings.Contains(*u, "@mosquitto:1883") || !strings.HasPrefix(*u, "tcp://"+*id+":") {
			fail("cloud", "%s must reach the broker's backend listener mosquitto:1883 with its own login, %s (its client id)", name, *id)
		}
		if !strings.Contains(healthTest(cloud), "/cloud-server healthcheck") {
			fail("healthcheck", "%s's health check must be the binary's own (no curl in the image)", name)
		}
	}
	bad = append(bad, checkSecrets(raw)...)
	return bad
}

// secretName says which variables hold secrets.
var secretName = regexp.MustCompile(`(?i)(PASSWORD|SECRET|TOKEN|_KEY$|PASSWD|CREDENTIAL|REQUIREPASS|_AUTH$)`)

// varRef matches ${NAME}, ${NAME:-x}, ${NAME-x}, ${NAME:?x}, ${NAME?x},
// ${NAME:+x} (not $${...}, which is a literal for the container's shell).
var varRef = regexp.MustCompile(`(^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)((:?[-?+])([^}]*))?\}`)

// varRefs lists every interpolation of the text as name → operators used.
func varRefs(raw string) map[string][]string {
	out := map[string][]string{}
	for _, m := range varRef.FindAllStringSubmatch(raw, -1) {
		op := m[4]
		if op != "" && strings.HasSuffix(op, "?") && strings.TrimSpace(m[5]) == "" {
			op += "(no message)"
		}
		out[m[2]] = append(out[m[2]], op)
	}
	return out
}

// checkSecrets: every secret comes from the environment in the required
// form ${NAME:?message}, never a default and never a literal.
func checkSecrets(raw string) []string {
	var bad []string
	for name, ops := range varRefs(raw) {
		if !secretName.MatchString(name) {
			continue
		}
		for _, op := range ops {
			if op != ":?" {
				bad = append(bad, fmt.Sprintf("[secrets] ${%s%s...}: a secret must be required, ${%s:?message}", name, op, name))
			}
		}
	}
	// Literal values of secret keys, and passwords in URLs.
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		return append(bad, "[secrets] "+err.Error())
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i := 0; i < len(n.Content); i++ {
			c := n.Content[i]
			if n.Kind == yaml.MappingNode && i%2 == 0 && i+1 < len(n.Content) {
				v := n.Content[i+1]
				if secretName.MatchString(c.Value) && v.Kind == yaml.ScalarNode && !strings.HasPrefix(v.Value, "${") {
					bad = append(bad, fmt.Sprintf("[secrets] %s: %q is a literal; use ${%s:?message}", c.Value, v.Value, c.Value))
				}
			}
			if c.Kind == yaml.ScalarNode {
				for _, m := range regexp.MustCompile(`://[^/\s:@]+:([^@\s]+)@`).FindAllStringSubmatch(c.Value, -1) {
					if !strings.HasPrefix(m[1], "${") {
						bad = append(bad, fmt.Sprintf("[secrets] a URL carries the literal password %q", m[1]))
					}
				}
				if i > 0 && n.Kind == yaml.SequenceNode && secretName.MatchString(n.Content[i-1].Value) && strings.HasPrefix(n.Content[i-1].Value, "--") &&
					!strings.HasPrefix(c.Value, "${") {
					bad = append(bad, fmt.Sprintf("[secrets] %s %q is a literal", n.Content[i-1].Value, c.Value))
				}
			}
			walk(c)
		}
	}
	walk(&doc)
	slices.Sort(bad)
	return bad
}

func TestDevCompose(t *testing.T) {
	root := filepath.Dir(filepath.Join(repoPath(t, "docker-compose.yml")))
	p, err := loadCompose(root, "docker-compose.yml", envFile(t, repoFile(t, ".env.docker")))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range checkDevCompose(p) {
		t.Error(b)
	}
	// Without .env.docker too: every variable has a default.
	if _, err := loadCompose(root, "docker-compose.yml", nil); err != nil {
		t.Errorf("docker-compose.yml without .env.docker: %v", err)
	}
	// .env.docker sets only what the file uses.
	refs := varRefs(repoFile(t, "docker-compose.yml"))
	for name := range envFile(t, repoFile(t, ".env.docker")) {
		if _, ok := refs[name]; !ok {
			t.Errorf(".env.docker sets %s, which docker-compose.yml does not use", name)
		}
	}
}

func TestProdCompose(t *testing.T) {
	root := filepath.Dir(repoPath(t, "docker-compose.prod.yml"))
	raw := repoFile(t, "docker-compose.prod.yml")
	p, err := loadCompose(root, "docker-compose.prod.yml", prodEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range checkProdCompose(p, raw) {
		t.Error(b)
	}
	// Each required variable missing stops compose with its message.
	for name := range prodEnv {
		env := map[string]string{}
		for k, v := range prodEnv {
			if k != name {
				env[k] = v
			}
		}
		_, err := loadCompose(root, "docker-compose.prod.yml", env)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), ".env.production") {
			t.Errorf("without %s: err = %v; want compose to refuse, naming it and .env.production", name, err)
		}
	}
	// The secrets reach the services interpolated, where they are needed.
	for name, login := range map[string]string{"cloud": "fleetgate.cloud.1", "cloud-2": "fleetgate.cloud.2"} {
		cloud := p.Services[name]
		for k, want := range map[string]string{"DATABASE_URL": ":pg-secret@postgres:5432/", "REDIS_URL": ":redis-secret@redis:6379/", "MQTT_URL": login + ":mqtt-secret@mosquitto:1883"} {
			if v := cloud.Environment[k]; v == nil || !strings.Contains(*v, want) {
				t.Errorf("%s %s = %v, want it to contain %q", name, k, v, want)
			}
		}
	}
}

// TestEnvProductionExample: every variable of docker-compose.prod.yml is in
// .env.production.example, documented by a comment, and no secret has a value.
func TestEnvProductionExample(t *testing.T) {
	example := repoFile(t, ".env.production.example")
	refs := varRefs(repoFile(t, "docker-compose.prod.yml"))
	vars := envFile(t, example)
	lines := strings.Split(example, "\n")
	for name := range refs {
		v, ok := vars[name]
		if !ok {
			t.Errorf(".env.production.example does not document %s", name)
			continue
		}
		if secretName.MatchString(name) && v != "" {
			t.Errorf(".env.production.example gives the secret %s a value", name)
		}
		for i, l := range lines {
			if strings.HasPrefix(l, name+"=") && (i == 0 || !strings.HasPrefix(lines[i-1], "#")) {
				t.Errorf(".env.production.example: %s has no comment above it", name)
			}
		}
	}
	for name := range vars {
		if _, ok := refs[name]; !ok {
			t.Errorf(".env.production.example has %s, which docker-compose.prod.yml does not use", name)
		}
	}
}

// envFile parses KEY=value lines (comments and blank lines skipped).
func envFile(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("line %d: %q is not KEY=value", i+1, l)
		}
		out[k] = v
	}
	return out
}

func repoPath(t *testing.T, rel string) string {
	t.Helper()
	path := filepath.Join(moduleRoot(t), filepath.FromSlash(rel))
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// editService rewrites one service of a compose file at the YAML level: set
// adds or replaces keys (value in YAML), del removes keys. Keys set on the
// service override what it merges from an anchor (<<: *hardened).
func editService(t *testing.T, src, service string, set map[string]string, del ...string) string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	svc := mapValue(mapValue(doc.Content[0], "services"), service)
	if svc == nil {
		t.Fatalf("no service %s", service)
	}
	for _, k := range del {
		i := slices.IndexFunc(svc.Content, func(n *yaml.Node) bool { return n.Value == k })
		if i < 0 || i%2 != 0 {
			t.Fatalf("service %s has no key %s to delete", service, k)
		}
		svc.Content = slices.Delete(svc.Content, i, i+2)
	}
	for k, v := range set {
		var val yaml.Node
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(svc.Content, func(n *yaml.Node) bool { return n.Value == k }); i >= 0 && i%2 == 0 {
			svc.Content[i+1] = val.Content[0]
		} else {
			svc.Content = append(svc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, val.Content[0])
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

type composeMutation struct {
	name string
	edit func(t *testing.T, src string) string
	rule string
}

func setKey(service, key, value string) func(*testing.T, string) string {
	return func(t *testing.T, src string) string {
		return editService(t, src, service, map[string]string{key: value})
	}
}

func delKey(service, key string) func(*testing.T, string) string {
	return func(t *testing.T, src string) string { return editService(t, src, service, nil, key) }
}

func replaceText(old, new string) func(*testing.T, string) string {
	return func(t *testing.T, src string) string { return mustReplace(t, src, old, new) }
}

// assertCaught fails unless the broken file did not load (loadErr) or the
// checker reports a violation of rule.
func assertCaught(t *testing.T, rule string, loadErr error, check func() []string) {
	t.Helper()
	if loadErr != nil {
		t.Errorf("the broken file did not even load (%v); the mutation should break [%s] alone", loadErr, rule)
		return
	}
	v := check()
	if !slices.ContainsFunc(v, func(s string) bool { return strings.HasPrefix(s, "["+rule+"]") }) {
		t.Errorf("not caught as [%s]; checker said %q", rule, v)
	}
}

// TestComposeChecksCatchRegressions breaks one rule at a time in a copy of
// each compose file and expects the checker to name it.
func TestComposeChecksCatchRegressions(t *testing.T) {
	prod := repoFile(t, "docker-compose.prod.yml")
	dev := repoFile(t, "docker-compose.yml")
	devEnv := envFile(t, repoFile(t, ".env.docker"))
	for _, m := range []composeMutation{
		{"cap_drop removed from redis", setKey("redis", "cap_drop", "[]"), "cap_drop"},
		{"a capability added back to the proxy", setKey("proxy", "cap_add", "[NET_BIND_SERVICE]"), "cap_drop"},
		{"no-new-privileges removed from postgres", setKey("postgres", "security_opt", "[]"), "no-new-privileges"},
		{"writable root filesystem for the cloud", setKey("cloud", "read_only", "false"), "read_only"},
		{"no tmpfs for mosquitto", delKey("mosquitto", "tmpfs"), "read_only"},
		{"osrm runs as root", setKey("osrm", "user", `"0:0"`), "non-root"},
		{"the cloud without a user", delKey("cloud", "user"), "non-root"},
		{"privileged proxy", setKey("proxy", "privileged", "true"), "isolation"},
		{"docker socket mounted", setKey("cloud", "volumes", `["/var/run/docker.sock:/var/run/docker.sock"]`), "isolation"},
		{"no restart policy on redis", setKey("redis", "restart", `"no"`), "restart"},
		{"no log rotation on the cloud", setKey("cloud", "logging", "{driver: json-file}"), "logging"},
		{"no health check on postgres", delKey("postgres", "healthcheck"), "healthcheck"},
		{"health check disabled on mosquitto", setKey("mosquitto", "healthcheck", "{disable: true}"), "healthcheck"},
		{"no memory limit on osrm", setKey("osrm", "deploy", `{resources: {limits: {cpus: "1"}, reservations: {cpus: "0.1", memory: 64m}}}`), "resources"},
		{"no reservations on the cloud", setKey("cloud", "deploy", `{resources: {limits: {cpus: "1", memory: 1g, pids: 10}}}`), "resources"},
		{"PostgreSQL published", setKey("postgres", "ports", `["5432:5432"]`), "ports"},
		{"the API published around the proxy", setKey("cloud", "ports", `["8000:8000"]`), "ports"},
		{"plain MQTT published", setKey("mosquitto", "ports", `["8883:8883", "1883:1883"]`), "ports"},
		{"backend network not internal", replaceText("  backend:\n    driver: bridge\n    internal: true", "  backend:\n    driver: bridge"), "internal"},
		{"redis on the public network", setKey("redis", "networks", "[public, backend]"), "internal"},
		{"a literal password", replaceText("POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env.production (openssl rand -hex 32)}", "POSTGRES_PASSWORD: hunter2"), "secrets"},
		{"a password with a default", replaceText("REDISCLI_AUTH: ${REDIS_PASSWORD:?set REDIS_PASSWORD in .env.production (openssl rand -hex 32)}", "REDISCLI_AUTH: ${REDIS_PASSWORD:-changeme}"), "secrets"},
		{"a literal password in a URL", replaceText("postgres://fleetgate:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env.production (openssl rand -hex 32)}@", "postgres://fleetgate:hunter2@"), "secrets"},
		{"a literal password on a command line", replaceText(`"--requirepass", "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env.production (openssl rand -hex 32)}"`, `"--requirepass", "hunter2"`), "secrets"},
		{"an unpinned image", setKey("redis", "image", "redis:latest"), "images"},
		{"the cloud without a fixed MQTT client id", setKey("cloud", "environment", `{MQTT_URL: "tcp://fleetgate.cloud.1:${MQTT_CLOUD_PASSWORD:?x}@mosquitto:1883"}`), "cloud"},
		{"both replicas with one client id", replaceText("MQTT_CLIENT_ID: fleetgate.cloud.2", "MQTT_CLIENT_ID: fleetgate.cloud.1"), "cloud"},
		{"a replica logging in as another", replaceText("MQTT_URL: tcp://fleetgate.cloud.2:", "MQTT_URL: tcp://fleetgate.cloud.1:"), "cloud"},
		{"one replica only", replaceText("\n  cloud-2:\n    <<: *cloud\n", "\n  cloud-2-gone:\n    <<: *cloud\n"), "cloud"},
		{"OSRM prepared with the network on", delKey("osrm-prepare", "network_mode"), "osrm"},
	} {
		t.Run("prod/"+m.name, func(t *testing.T) {
			broken := m.edit(t, prod)
			p, err := loadComposeText(t, "docker-compose.prod.yml", broken, prodEnv)
			assertCaught(t, m.rule, err, func() []string { return checkProdCompose(p, broken) })
		})
	}
	for _, m := range []composeMutation{
		{"no health check on redis", delKey("redis", "healthcheck"), "healthcheck"},
		{"no limits on the cloud", setKey("cloud", "deploy", `{resources: {reservations: {cpus: "0.5", memory: 256m}}}`), "resources"},
		{"no reservations on edge", setKey("edge", "deploy", `{resources: {limits: {cpus: "1", memory: 1g}}}`), "resources"},
		{"PostgreSQL not published", delKey("postgres", "ports"), "ports"},
		{"the cloud from the production image", setKey("cloud", "build", "{context: ., dockerfile: Dockerfile.cloud, target: production}"), "cloud"},
		{"the source not mounted", setKey("cloud", "volumes", "[go-mod:/go/pkg/mod]"), "cloud"},
		{"OSRM started before its data", delKey("osrm", "depends_on"), "osrm"},
		{"OSRM with the CH algorithm", replaceText(`"osrm-routed", "--algorithm", "mld"`, `"osrm-routed", "--algorithm", "ch"`), "osrm"},
		{"the agent not reading the sim", replaceText("port: tcp://sim:4001", "port: /dev/ttyUSB0"), "wiring"},
		{"the simulator not serving the OBD port", replaceText("TCP-LISTEN:4002", "TCP-LISTEN:4003"), "wiring"},
	} {
		t.Run("dev/"+m.name, func(t *testing.T) {
			p, err := loadComposeText(t, "docker-compose.yml", m.edit(t, dev), devEnv)
			assertCaught(t, m.rule, err, func() []string { return checkDevCompose(p) })
		})
	}
}

// prodService returns a service of docker-compose.prod.yml as loaded.
func prodService(t *testing.T, name string) types.ServiceConfig {
	t.Helper()
	p, err := loadCompose(moduleRoot(t), "docker-compose.prod.yml", prodEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.prod.yml has no service %s", name)
	}
	return s
}

// runHealthcheck runs a compose health check test (CMD or CMD-SHELL) on
// this machine, after the edits, and returns its error.
func runHealthcheck(t *testing.T, test []string, env []string, edits []rewriteRule) error {
	t.Helper()
	var cmd *exec.Cmd
	switch test[0] {
	case "CMD-SHELL":
		cmd = exec.Command("sh", "-c", rewrite(t, test[1], edits))
	case "CMD":
		args := strings.Split(rewrite(t, strings.Join(test[1:], "\x00"), edits), "\x00")
		cmd = exec.Command(args[0], args[1:]...)
	default:
		t.Fatalf("health check %q", test)
	}
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// TestComposeBrokerHealthchecks runs the broker health checks of both compose
// files, as written, against brokers started with their configurations.
func TestComposeBrokerHealthchecks(t *testing.T) {
	t.Run("production", func(t *testing.T) {
		b := startProductionBroker(t, brokerOptions{})
		test := prodService(t, "mosquitto").HealthCheck.Test
		port := []rewriteRule{{"-p 1883 ", fmt.Sprintf("-p %d ", b.backendPort), 1}}
		if err := runHealthcheck(t, test, []string{"MQTT_CLOUD_PASSWORD=" + b.cloudPassword}, port); err != nil {
			t.Errorf("healthy broker: %v", err)
		}
		if err := runHealthcheck(t, test, []string{"MQTT_CLOUD_PASSWORD=wrong"}, port); err == nil {
			t.Error("the health check passed with a wrong password")
		}
	})
	t.Run("development", func(t *testing.T) {
		dir := t.TempDir()
		port := testenv.FreePort(t)
		conf := rewrite(t, repoFile(t, "deploy/mosquitto/mosquitto.dev.conf"), []rewriteRule{
			{"\nlistener 1883\n", fmt.Sprintf("\nlistener %d 127.0.0.1\n", port), 1},
			{"/mosquitto/data/", dir + "/", 1},
		})
		testenv.StartMosquitto(t, testenv.MosquittoOptions{Config: conf, Ports: []int{port}})
		p, err := loadCompose(moduleRoot(t), "docker-compose.yml", nil)
		if err != nil {
			t.Fatal(err)
		}
		edits := []rewriteRule{{"\x001883\x00", fmt.Sprintf("\x00%d\x00", port), 1}}
		if err := runHealthcheck(t, p.Services["mosquitto"].HealthCheck.Test, nil, edits); err != nil {
			t.Errorf("development broker: %v", err)
		}
		// Anonymous clients are welcome in development, as the stack's agent is.
		c, err := connect(paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).SetClientID("dev-" + testenv.ID()))
		if err != nil {
			t.Fatalf("anonymous client on the development broker: %v", err)
		}
		c.Disconnect(0)
	})
}
