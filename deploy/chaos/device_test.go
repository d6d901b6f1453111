package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/deploy/chaos"
	"github.com/fleetgate/fleetgate/firmware-sim/cloudapi"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

type device struct {
	Online           bool              `json:"online"`
	OutboxDepth      uint64            `json:"outbox_depth"`
	OldestUnsentAgeS float64           `json:"oldest_unsent_age_s"`
	Dropped          uint64            `json:"dropped"`
	StreamID         string            `json:"stream_id"`
	NextSeq          uint64            `json:"next_seq"`
	RTTMs            int64             `json:"rtt_ms"`
	Counters         map[string]uint64 `json:"counters"`
}

type command struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Result *struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"result"`
}

func post(ctx context.Context, api cloudapi.Client, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.Base+path, bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+api.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestDeviceHealthAndCommands: the agent's retained status reaches the
// vehicles API as device health (online, outbox, RTT, counters); commands
// posted to the API reach the agent and their results come back; a killed
// agent's last will marks it offline and a restart online again.
func TestDeviceHealthAndCommands(t *testing.T) {
	b := testenv.StartMosquitto(t, chaos.BrokerOptions)
	c := chaos.NewChain(t, chaos.Options{Speed: 20, Duration: 40 * time.Minute, OBD: true})
	c.StartCloud(b.URL())
	c.StartSim()
	c.StartAgent(b.URL())
	ctx := context.Background()
	health := func(cond func(device) error) device {
		t.Helper()
		var d device
		testenv.Eventually(t, time.Minute, "device health in the API", func() error {
			var v struct {
				Device *device `json:"device"`
			}
			if err := c.API.Get(ctx, "/api/v1/vehicles/"+c.Vehicle, &v); err != nil {
				return err
			}
			if v.Device == nil {
				return fmt.Errorf("no device health yet")
			}
			d = *v.Device
			return cond(d)
		}, c.Cloud)
		return d
	}
	d := health(func(d device) error {
		if !d.Online || d.RTTMs <= 0 || d.NextSeq < 2 {
			return fmt.Errorf("%+v", d)
		}
		return nil
	})
	if _, ok := d.Counters["gps.fixes"]; !ok {
		t.Errorf("device counters lack the GPS source's: %v", d.Counters)
	}
	if _, ok := d.Counters["outbox.dropped_oldest"]; !ok {
		t.Errorf("device counters lack the outbox drop counters: %v", d.Counters)
	}

	run := func(body string) command {
		t.Helper()
		code, out, err := post(ctx, c.API, "/api/v1/vehicles/"+c.Vehicle+"/commands", body)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("POST command %s: %d %s %v", body, code, out, err)
		}
		var cmd command
		if err := json.Unmarshal(out, &cmd); err != nil || cmd.Status != "sent" {
			t.Fatalf("POST command answer %s: %v", out, err)
		}
		testenv.Eventually(t, time.Minute, "the result of "+body, func() error {
			if err := c.API.Get(ctx, "/api/v1/vehicles/"+c.Vehicle+"/commands/"+cmd.ID, &cmd); err != nil {
				return err
			}
			if cmd.Result == nil {
				return fmt.Errorf("status %s", cmd.Status)
			}
			return nil
		}, c.Cloud, c.Agent)
		return cmd
	}
	if r := run(`{"type":"report_status"}`); r.Status != "done" || !r.Result.OK {
		t.Errorf("report_status: %+v %+v", r, r.Result)
	}
	if r := run(`{"type":"set_report_interval","interval_ms":500,"ttl_s":60}`); r.Status != "done" {
		t.Errorf("set_report_interval: %+v %+v", r, r.Result)
	}
	// The OBD source changes what it polls, and reads the trouble codes on
	// demand from the simulator's ELM327.
	if r := run(`{"type":"set_pids","pids":["0C","0D"]}`); r.Status != "done" || !r.Result.OK {
		t.Errorf("set_pids: %+v %+v", r, r.Result)
	}
	if r := run(`{"type":"read_dtcs"}`); r.Status != "done" || !r.Result.OK {
		t.Errorf("read_dtcs: %+v %+v", r, r.Result)
	}
	for _, bad := range []string{`{"type":"reboot"}`, `{"type":"set_report_interval","interval_ms":5}`, `{"type":"set_pids","pids":["ZZ"]}`, `not json`} {
		if code, out, _ := post(ctx, c.API, "/api/v1/vehicles/"+c.Vehicle+"/commands", bad); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 400", bad, code, out)
		}
	}
	if code, _, _ := post(ctx, c.API, "/api/v1/vehicles/nobody/commands", `{"type":"report_status"}`); code != http.StatusNotFound {
		t.Errorf("command for an unknown vehicle: %d, want 404", code)
	}
	var nf map[string]any
	if err := c.API.Get(ctx, "/api/v1/vehicles/"+c.Vehicle+"/commands/nope", &nf); err == nil {
		t.Errorf("an unknown command id was found: %v", nf)
	}

	// kill -9: the broker publishes the agent's last will.
	c.KillAgent()
	health(func(d device) error {
		if d.Online {
			return fmt.Errorf("still online")
		}
		return nil
	})
	c.StartAgent(b.URL())
	health(func(d device) error {
		if !d.Online {
			return fmt.Errorf("still offline")
		}
		return nil
	})
}
