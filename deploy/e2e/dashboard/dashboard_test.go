package dashboard_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	pngenc "image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetgate/fleetgate/deploy/e2e"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/browser"
	"github.com/fleetgate/fleetgate/internal/testenv"
	"github.com/fleetgate/fleetgate/shared/telemetry"
	"github.com/fleetgate/fleetgate/shared/telemetry/telemetrypb"
)

// dashChain is the real chain behind the dashboard: cloud-server, the
// simulator on ptys and one agent per vehicle, the first vehicle's agent
// reaching the broker through a fault proxy (its uplink can be cut).
type dashChain struct {
	dir, bin, db string
	base         string
	api          cloudapi.Client
	cloud        *testenv.Proc
	sim          *testenv.Proc
	vehicles     []string
	uplink       *testenv.Proxy // between the first vehicle's agent and the broker
}

func startDashChain(t *testing.T, vehicles int, duration time.Duration) *dashChain {
	t.Helper()
	c := &dashChain{dir: t.TempDir(), bin: testenv.Binaries(t), db: testenv.Postgres(t)}
	redisURL, prefix := testenv.Redis(t)
	mqttURL, ns := testenv.MQTT(t)
	port := testenv.FreePort(t)
	c.base = "http://127.0.0.1:" + strconv.Itoa(port)
	c.api = cloudapi.Client{Base: c.base}
	c.cloud = testenv.StartProcess(t, c.dir, "cloud-server", filepath.Join(c.bin, "cloud-server"), []string{
		"DATABASE_URL=" + c.db, "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + mqttURL, "MQTT_NAMESPACE=" + ns, "MQTT_CLIENT_ID=e2e-dash-cloud-" + testenv.ID(),
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "TRIP_INTERVAL=1s",
	}, "run")
	e2e.WaitReady(t, 30*time.Second, c.api, c.cloud)

	links := filepath.Join(c.dir, "dev")
	idPrefix := "dash" + testenv.ID() + "-"
	// Real time (speed 1, from now): the fixes' times and the OBD samples'
	// (stamped by the agent) then agree, as in a vehicle.
	c.sim = testenv.StartProcess(t, c.dir, "firmware-sim", filepath.Join(c.bin, "firmware-sim"), nil, "run",
		"--vehicles", strconv.Itoa(vehicles), "--id-prefix", idPrefix, "--duration", duration.String(),
		"--truth", filepath.Join(c.dir, "truth.jsonl"), "--link-dir", links, "--seed", "3")
	broker := strings.TrimPrefix(mqttURL, "tcp://")
	c.uplink = testenv.StartProxy(t, broker, testenv.ProxyOptions{})
	for i := 1; i <= vehicles; i++ {
		v := fmt.Sprintf("%s%03d", idPrefix, i)
		c.vehicles = append(c.vehicles, v)
		t.Cleanup(func() { e2e.ForgetAgent(t, mqttURL, telemetry.Namespace(ns), v) })
		for _, dev := range []string{"gps", "obd"} {
			link := filepath.Join(links, v+"-"+dev)
			testenv.Eventually(t, 20*time.Second, link, func() error { _, err := os.Stat(link); return err }, c.sim)
		}
		url := mqttURL
		if i == 1 {
			url = c.uplink.URL()
		}
		cfg := filepath.Join(c.dir, v+".yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`vehicle_id: %s
data_dir: %s
gps:
  port: %s
obd:
  port: %s
  pids: ["0C", "0D", "05"]
  interval: 500ms
mqtt:
  url: %s
  namespace: %s
  client_id: e2e-%s
outbox:
  flush_interval: 100ms
uplink:
  min_batch_age: 300ms
  status_interval: 1s
  backoff_max: 2s
http:
  listen: ""
`, v, filepath.Join(c.dir, v+"-data"), filepath.Join(links, v+"-gps"), filepath.Join(links, v+"-obd"), url, ns, v)), 0o600); err != nil {
			t.Fatal(err)
		}
		testenv.StartProcess(t, c.dir, "edge-agent-"+v, filepath.Join(c.bin, "edge-agent"), nil, "run", "--config", cfg)
	}
	return c
}

// token makes an API token of role with cloud-server token create.
func (c *dashChain) token(t *testing.T, name, role string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, "cloud-server"), "token", "create", "--name", name, "--role", role)
	cmd.Env = append(cmd.Environ(), "DATABASE_URL="+c.db)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cloud-server token create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// cell returns the text of a vehicle's cell in the list.
func cell(b *browser.Browser, vehicle, col string) (string, error) {
	return b.Text(fmt.Sprintf(`.vrow[data-id=%q] [data-col=%q]`, vehicle, col))
}

func number(s string) (int, error) {
	return strconv.Atoi(strings.ReplaceAll(s, ",", ""))
}

// TestDashboard drives the dashboard in Debian's headless Chromium against
// the real chain (simulator → ptys → agents → Mosquitto → cloud-server →
// PostgreSQL and Redis): an operator signs in, the map shows every
// simulated vehicle and a marker moves as the simulator drives; the list
// sorts, filters and selects; during an uplink outage the vehicle goes
// offline, and after it its outbox depth rises in the list and falls as the
// backlog drains; the vehicle view shows its health and takes a command;
// one of its trips replays; a viewer sees no command controls. Any console error, uncaught exception
// or refused request (a CSP violation, say) fails the test. Screenshots go
// to the artifacts directory (internal/browser).
func TestDashboard(t *testing.T) {
	c := startDashChain(t, 3, 30*time.Minute)
	operator := c.token(t, "ops", "operator")
	viewer := c.token(t, "watch", "viewer")

	b := browser.Start(t, browser.Options{})
	b.Run("open the dashboard", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.Screenshot("sign-in")
	e2e.SignIn(t, b, c.base, operator, 3)

	// The map shows every simulated vehicle.
	var first map[string][2]float64
	b.Until(60*time.Second, "a marker for every vehicle", func() error {
		if err := b.Eval("window.fleetgate.markers()", &first); err != nil {
			return err
		}
		for _, v := range c.vehicles {
			if _, ok := first[v]; !ok {
				return fmt.Errorf("no marker for %s (markers: %v)", v, first)
			}
		}
		return nil
	})
	b.Screenshot("fleet")

	// A marker moves as the simulator drives.
	b.Until(60*time.Second, "a marker moving", func() error {
		var now map[string][2]float64
		if err := b.Eval("window.fleetgate.markers()", &now); err != nil {
			return err
		}
		for _, v := range c.vehicles {
			if math.Abs(now[v][0]-first[v][0]) > 1e-5 || math.Abs(now[v][1]-first[v][1]) > 1e-5 {
				return nil
			}
		}
		return fmt.Errorf("no marker moved from %v", first)
	})

	// Sort by vehicle, descending: the last vehicle comes first.
	b.Run("sort by vehicle", chromedp.Click(chromedp.CSS(`.vrow.head [data-col="id"]`)))
	b.Until(10*time.Second, "the list sorted by id, descending", func() error {
		var ids []string
		if err := b.Eval(`[...document.querySelectorAll(".vbody .vrow[data-id]:not([hidden])")].sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top).map(r => r.dataset.id)`, &ids); err != nil {
			return err
		}
		if len(ids) != 3 || ids[0] != c.vehicles[2] || ids[2] != c.vehicles[0] {
			return fmt.Errorf("rows in order %v", ids)
		}
		return nil
	})
	// Filter by id: one row.
	b.Run("filter", chromedp.SendKeys(chromedp.CSS("input.filter"), c.vehicles[1]))
	b.Until(10*time.Second, "the filtered list", func() error {
		n, err := b.NodeCount(".vbody .vrow[data-id]:not([hidden])")
		if err != nil {
			return err
		}
		return testenv.True(n == 1)
	})
	b.Run("clear the filter", chromedp.Evaluate[chromedp.Void](`(f => { f.value = ""; f.dispatchEvent(new Event("input")) })(document.querySelector("input.filter"))`))

	// A click on a row selects the vehicle on the map.
	sick := c.vehicles[0]
	b.Run("select a vehicle", chromedp.Click(chromedp.CSS(fmt.Sprintf(`.vrow[data-id=%q] .c-id`, sick))))
	b.Until(10*time.Second, "the selected vehicle's card", func() error {
		id, err := b.Text(".selected-card h2")
		if err != nil {
			return err
		}
		sel, err := b.NodeCount(fmt.Sprintf(`.vrow.selected[data-id=%q]`, sick))
		if err != nil {
			return err
		}
		return testenv.True(id == sick && sel == 1)
	})
	b.Screenshot("selected")

	// An uplink outage: the vehicle goes offline; after it, its outbox
	// depth rises in the list and falls as the backlog drains.
	c.uplink.SetUp(false)
	b.Until(60*time.Second, sick+" offline in the list", func() error {
		s, err := cell(b, sick, "online")
		if err != nil {
			return err
		}
		return testenv.True(s == "offline")
	})
	b.Screenshot("outage")
	time.Sleep(20 * time.Second) // the outage: the agent keeps recording
	c.uplink.SetUp(true)
	peak, shotPeak := 0, false
	b.Until(90*time.Second, sick+"'s outbox depth rising after the outage and falling", func() error {
		s, err := cell(b, sick, "outbox")
		if err != nil {
			return err
		}
		n, err := number(s)
		if err != nil {
			return fmt.Errorf("outbox %q: %v", s, err)
		}
		if n > peak {
			peak = n
		}
		if peak >= 30 && !shotPeak {
			b.Screenshot("backlog")
			shotPeak = true
		}
		if peak >= 30 && n <= peak/4 {
			return nil
		}
		return fmt.Errorf("outbox depth %d, the most seen %d", n, peak)
	})
	t.Logf("%s held up to %d records after the outage, and drained them", sick, peak)
	b.Screenshot("drained")

	// The vehicle view: health over time and a command.
	b.Run("open the vehicle", chromedp.Click(chromedp.CSS(".selected-card a.button")))
	b.Until(30*time.Second, "the vehicle view", func() error {
		pos, err := b.Text(`.vehicle dd[data-key="position"]`)
		if err != nil {
			return err
		}
		charts, err := b.NodeCount(".health .chart canvas")
		if err != nil {
			return err
		}
		return testenv.True(pos != "–" && charts == 2)
	})
	b.Screenshot("vehicle")
	b.Run("send a command", chromedp.Click(chromedp.CSS(".command-form button[type=submit]")))
	b.Until(60*time.Second, "the command's result", func() error {
		s, err := b.Text(".command-msg")
		if err != nil {
			return err
		}
		if strings.Contains(s, "failed") || strings.Contains(s, "expired") || strings.Contains(s, "not sent") {
			t.Fatalf("the command: %s", s)
		}
		return testenv.True(strings.Contains(s, ": done"))
	})
	b.Screenshot("command")

	// A trip replays: its track on the map, its speed and RPM chart, and a
	// cursor moving along both.
	b.Until(90*time.Second, "a trip of "+sick, func() error {
		n, err := b.NodeCount(".trips tr[data-trip] a.button")
		if err != nil {
			return err
		}
		return testenv.True(n > 0)
	})
	b.Run("open the trip", chromedp.Click(chromedp.CSS(".trips tr[data-trip] a.button")))
	b.Until(30*time.Second, "the replay", func() error {
		ready, err := b.NodeCount(`.replay[data-ready="true"] .chart canvas`)
		if err != nil {
			return err
		}
		return testenv.True(ready > 0)
	})
	if title, err := b.Text(".replay .u-title"); err != nil || !strings.Contains(title, "Speed and engine RPM") {
		t.Errorf("the replay chart's title %q (%v): want speed and RPM", title, err)
	}
	type cursor struct{ T, Lat, Lon float64 }
	var at0 cursor
	if err := b.Eval("window.fleetgate.replayCursor()", &at0); err != nil {
		t.Fatal(err)
	}
	b.Screenshot("replay")
	b.Run("play", chromedp.Click(chromedp.CSS("button.play")))
	b.Until(30*time.Second, "the replay cursor moving", func() error {
		var at cursor
		if err := b.Eval("window.fleetgate.replayCursor()", &at); err != nil {
			return err
		}
		if at.T > at0.T+5 && (at.Lat != at0.Lat || at.Lon != at0.Lon) {
			return nil
		}
		return fmt.Errorf("cursor at %+v, from %+v", at, at0)
	})
	b.Screenshot("replaying")
	b.Run("pause", chromedp.Click(chromedp.CSS("button.play")))
	b.Until(10*time.Second, "the replay paused", func() error {
		playing, err := b.Text(`.replay[data-playing="false"] button.play`)
		if err != nil {
			return err
		}
		return testenv.True(strings.Contains(playing, "Play"))
	})

	// A viewer sees no command controls.
	b.Run("sign out", chromedp.Click(chromedp.CSS("button.signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	e2e.SignIn(t, b, c.base, viewer, 3)
	b.Run("open the vehicle as a viewer", chromedp.Navigate(c.base+"/#/vehicles/"+sick), chromedp.WaitVisible(chromedp.CSS(".vehicle .health")))
	b.Until(30*time.Second, "the vehicle view without commands", func() error {
		role, err := b.Text(".who")
		if err != nil {
			return err
		}
		forms, err := b.NodeCount(".command-form, .command-form button")
		if err != nil {
			return err
		}
		if forms != 0 {
			return fmt.Errorf("a viewer sees %d command controls", forms)
		}
		return testenv.True(strings.Contains(role, "viewer"))
	})
	b.Screenshot("viewer")
}

// TestDashboardTiles: with MAP_TILE_URL set, the page loads its tiles from
// that server, which the Content-Security-Policy lets through (a refused
// image would be a console error and fail the test), and shows the
// configured attribution.
func TestDashboardTiles(t *testing.T) {
	var tiles atomic.Int64
	tile := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			tile.Set(x, y, color.RGBA{R: 200, G: 220, B: 200 + uint8(x/16), A: 255})
		}
	}
	var png bytes.Buffer
	if err := pngenc.Encode(&png, tile); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tiles.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(png.Bytes())
	}))
	defer server.Close()

	base, token, _, _ := startDashCloud(t, "tiles", "MAP_TILE_URL="+server.URL+"/{z}/{x}/{y}.png", "MAP_TILE_ATTRIBUTION=Test tiles")

	b := browser.Start(t, browser.Options{})
	e2e.SignIn(t, b, base, token, 0)
	b.Until(30*time.Second, "map tiles from the tile server", func() error {
		n, err := b.NodeCount("img.leaflet-tile-loaded")
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no tile loaded (%d requests to the tile server)", tiles.Load())
		}
		return nil
	})
	if s, err := b.Text(".leaflet-control-attribution"); err != nil || !strings.Contains(s, "Test tiles") {
		t.Errorf("attribution %q (%v)", s, err)
	}
	b.Screenshot("tiles")
}

// startDashCloud starts a cloud-server alone (no agents) on a fresh
// database with env added, and makes an admin token for it.
func startDashCloud(t *testing.T, name string, env ...string) (base, token, mqttURL string, ns telemetry.Namespace) {
	t.Helper()
	dir, bin, db := t.TempDir(), testenv.Binaries(t), testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	mqttURL, nsName := testenv.MQTT(t)
	port := testenv.FreePort(t)
	base = "http://127.0.0.1:" + strconv.Itoa(port)
	cloud := testenv.StartProcess(t, dir, "cloud-server", filepath.Join(bin, "cloud-server"), append([]string{
		"DATABASE_URL=" + db, "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + prefix,
		"MQTT_URL=" + mqttURL, "MQTT_NAMESPACE=" + nsName, "MQTT_CLIENT_ID=e2e-" + name + "-cloud-" + testenv.ID(),
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port),
	}, env...), "run")
	e2e.WaitReady(t, 30*time.Second, cloudapi.Client{Base: base}, cloud)
	return base, e2e.Token(t, cloud), mqttURL, telemetry.Namespace(nsName)
}

// TestDashboardDeviceTrouble: a gateway whose filesystem is full and whose
// OBD adapter reports a bus fault says so in its status; the list marks it
// "device trouble" (and its filter finds it), and the vehicle view names
// both faults and the agent's clock. A healthy one beside it stays "online".
func TestDashboardDeviceTrouble(t *testing.T) {
	base, token, mqttURL, ns := startDashCloud(t, "trouble")
	now := time.Now()
	sick, well := "veh-sick-"+testenv.ID(), "veh-well-"+testenv.ID()
	for _, s := range []*telemetrypb.Status{
		{VehicleId: sick, Online: true, UnixMs: now.UnixMilli(), AgentVersion: "test", StreamId: 1, NextSeq: 1,
			FixMode: 3, OutboxTrouble: "filesystem_full", ObdState: "bus_fault: CAN ERROR",
			ClockSource: 2, ClockOffsetMs: -1200}, // 2: GNSS time
		{VehicleId: well, Online: true, UnixMs: now.UnixMilli(), AgentVersion: "test", StreamId: 2, NextSeq: 1,
			FixMode: 3, ObdState: "ok", ClockSource: 1}, // 1: the system clock, synchronised
	} {
		e2e.PublishStatus(t, mqttURL, ns, s)
	}

	b := browser.Start(t, browser.Options{})
	e2e.SignIn(t, b, base, token, 2)
	b.Until(30*time.Second, "the sick gateway marked in the list", func() error {
		var got map[string]string
		if err := b.Eval(`Object.fromEntries([...document.querySelectorAll(".vrow[data-id]")].filter(r => !r.hidden).map(r => [r.dataset.id, r.dataset.health + " " + r.querySelector(".c-id").title]))`, &got); err != nil {
			return err
		}
		// The id cell's title is the whole id, which a narrow column cuts.
		if got[sick] != "device "+sick || got[well] != "ok "+well {
			return fmt.Errorf("health and id cell title by vehicle %v, want %s device and %s ok", got, sick, well)
		}
		return testenv.True(true)
	})
	b.Run("show only the gateways in trouble", chromedp.Evaluate[chromedp.Void](`(f => { f.value = "device"; f.dispatchEvent(new Event("change")) })(document.querySelector("select.state-filter"))`))
	if s, err := b.Text(".vlist .count"); err != nil || !strings.HasPrefix(s, "1 of 2") {
		t.Errorf("the device-trouble filter shows %q (%v), want 1 of 2", s, err)
	}
	b.Screenshot("list")
	b.Run("open the sick gateway", chromedp.Navigate(base+"/#/vehicles/"+sick), chromedp.WaitVisible(chromedp.CSS(".vehicle .health")))
	want := map[string]string{
		"device-trouble": "outbox: filesystem full; OBD: bus fault: CAN ERROR",
		"clock":          "gnss, GNSS − system -1200 ms",
		"obd-adapter":    "bus_fault: CAN ERROR",
	}
	b.Until(30*time.Second, "the vehicle view's device state", func() error {
		for key, text := range want {
			got, err := b.Text(`dd[data-key="` + key + `"]`)
			if err != nil {
				return err
			}
			if got != text {
				return fmt.Errorf("%s: %q, want %q", key, got, text)
			}
		}
		return testenv.True(true)
	})
	b.Screenshot("vehicle")
}

// TestMapRemovedBeforeItsFrame removes a map after a path asked for a
// redraw in the next animation frame and the view then moved (which
// redraws at once), before that frame comes: what leaving a view right after
// it drew does on a slow machine. Leaflet 1.9.4's own canvas renderer then
// draws in that frame on the canvas it no longer has (TestDashboard failed
// so under load); the dashboard's renderer (cloud/web/src/map.ts) cancels
// the frame.
func TestMapRemovedBeforeItsFrame(t *testing.T) {
	base, _, _, _ := startDashCloud(t, "race")
	b := browser.Start(t, browser.Options{})
	b.Run("open the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if err := b.Eval(`(() => {
		const { leaflet: L, newMap } = window.fleetgate;
		const el = document.createElement("div");
		el.style.cssText = "width: 400px; height: 300px";
		document.body.append(el);
		for (let i = 0; i < 20; i++) {
			const { map, renderer } = newMap(el);
			L.polyline([[43.7, 7.4], [43.8, 7.5]], { renderer }).addTo(map); // a redraw in the next frame
			map.setView([43.75, 7.45], 12);                                   // a redraw at once
			map.remove();                                                     // before the frame
		}
		window.framesAfter = 0;
		requestAnimationFrame(() => requestAnimationFrame(() => { window.framesAfter = 2; }));
		return true;
	})()`, nil); err != nil {
		t.Fatal(err)
	}
	// Until fails at once on an error the page reported.
	b.Until(10*time.Second, "two animation frames after the maps were removed", func() error {
		var n int
		if err := b.Eval("window.framesAfter", &n); err != nil {
			return err
		}
		return testenv.True(n == 2)
	})
}
