package obd_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fleetgate/fleetgate/edge/obd"
)

// The probe's JSON document, in the shape edge/README.md ("obd-probe") shows:
// values in the PID table's units, an error per sample instead of a value.
func TestProbe(t *testing.T) {
	car := newFakeCar()
	car.stored = []string{"0301"}
	conn, _ := (&fakeDevice{car: car}).Open(context.Background())
	defer conn.Close()
	r, err := obd.Probe(context.Background(), conn, obd.ProbeOptions{Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	r.LatencyMs = 0 // measured: not a constant
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	round := `{"pid":"05","name":"coolant_temp","value":83,"unit":"°C"},{"pid":"0A","error":"NO DATA"},` +
		`{"pid":"0C","name":"engine_rpm","value":1726,"unit":"rpm"},{"pid":"0D","name":"vehicle_speed","value":50,"unit":"km/h"}`
	want := `{"adapter":"ELM327 v1.5","latency_ms":0,"protocol":"ISO 15765-4 (CAN 11/500)","voltage_v":14.2,"vehicle":"answered",` +
		`"vin":"WP0ZZZ99ZTS390000","supported_pids":["05","0A","0C","0D"],"dtcs":["P0301"],"samples":[` + round + `,` + round + `],"errors":[]}`
	if string(got) != want {
		t.Errorf("report\n%s\nwant\n%s", got, want)
	}
}

func TestProbeNoVehicle(t *testing.T) {
	car := newFakeCar()
	car.running = false
	conn, _ := (&fakeDevice{car: car}).Open(context.Background())
	defer conn.Close()
	r, err := obd.Probe(context.Background(), conn, obd.ProbeOptions{})
	if !errors.Is(err, obd.ErrNoVehicle) {
		t.Fatalf("Probe = %v, want ErrNoVehicle", err)
	}
	if r.Adapter != "ELM327 v1.5" || r.VoltageV == nil || *r.VoltageV != 12.4 || r.Protocol != "" || len(r.Samples) != 0 ||
		r.Vehicle != obd.VehicleNone || len(r.Errors) != 1 || r.Errors[0].Step != "search" {
		t.Errorf("report %+v", r)
	}
}
