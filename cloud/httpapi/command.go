package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/fleetgate/fleetgate/cloud"
)

// Command expiry: how long an agent may still run a command (ttl_s), by
// default and at most.
const (
	DefaultCommandTTL = 5 * time.Minute
	MaxCommandTTL     = 7 * 24 * time.Hour
)

type commandRequest struct {
	Type       cloud.CommandType `json:"type"`
	IntervalMs int64             `json:"interval_ms"`
	PIDs       []string          `json:"pids"`
	TTLs       *int64            `json:"ttl_s"`
}

type commandJSON struct {
	ID         string             `json:"id"`
	VehicleID  string             `json:"vehicle_id"`
	Type       cloud.CommandType  `json:"type"`
	IntervalMs int64              `json:"interval_ms,omitempty"`
	PIDs       []string           `json:"pids,omitempty"`
	Status     string             `json:"status"`
	Created    Time               `json:"created"`
	Expires    Time               `json:"expires"`
	Sent       *Time              `json:"sent,omitempty"`
	Result     *commandResultJSON `json:"result,omitempty"`
}

type commandResultJSON struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	DTCs     []string `json:"dtcs,omitempty"`
	Time     Time     `json:"time"`
	Received Time     `json:"received"`
}

func toCommandJSON(c *cloud.Command, now time.Time) commandJSON {
	out := commandJSON{ID: c.ID, VehicleID: c.VehicleID, Type: c.Type, IntervalMs: c.IntervalMs,
		Status: c.Status(now), Created: Time(c.CreatedAt), Expires: Time(c.ExpiresAt)}
	for _, p := range c.PIDs {
		out.PIDs = append(out.PIDs, fmt.Sprintf("%02X", p&0xff))
	}
	if !c.SentAt.IsZero() {
		t := Time(c.SentAt)
		out.Sent = &t
	}
	if r := c.Result; r != nil {
		out.Result = &commandResultJSON{OK: r.OK, Error: r.Error, DTCs: r.DTCs, Time: Time(r.Time), Received: Time(r.ReceivedAt)}
	}
	return out
}

// createCommand is POST /api/v1/vehicles/{id}/commands: {"type":
// "set_report_interval"|"set_pids"|"read_dtcs"|"report_status",
// "interval_ms": N, "pids": ["0C", ...], "ttl_s": N}. It stores the command,
// publishes it to the vehicle's down/cmd topic and answers 202 with the
// command (status "sent"); GET .../commands/{cmd_id} shows its result.
func (s *Server) createCommand(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if s.Commands == nil || s.Publisher == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "commands are not configured"))
		return
	}
	var req commandRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.Error(w, r, cloud.Errorf(cloud.EINVALID, "command body: %v", err))
		return
	}
	c, err := s.newCommand(id, &req)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := s.Commands.CreateCommand(r.Context(), c); err != nil {
		s.Error(w, r, err)
		return
	}
	if err := s.Publisher.PublishCommand(r.Context(), c); err != nil {
		s.Error(w, r, err)
		return
	}
	c.SentAt = s.Now().UTC()
	if err := s.Commands.MarkSent(r.Context(), id, c.ID, c.SentAt); err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/vehicles/"+id+"/commands/"+c.ID)
	s.json(w, http.StatusAccepted, toCommandJSON(c, s.Now()))
}

// newCommand checks req and makes the command with a random id.
func (s *Server) newCommand(vehicle string, req *commandRequest) (*cloud.Command, error) {
	ttl := DefaultCommandTTL
	if req.TTLs != nil {
		ttl = time.Duration(*req.TTLs) * time.Second
		if ttl <= 0 || ttl > MaxCommandTTL {
			return nil, cloud.Errorf(cloud.EINVALID, "ttl_s %d: must be 1 to %d", *req.TTLs, int64(MaxCommandTTL.Seconds()))
		}
	}
	var b [12]byte
	rand.Read(b[:])
	now := s.Now().UTC()
	c := &cloud.Command{ID: hex.EncodeToString(b[:]), VehicleID: vehicle, Type: req.Type, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	switch req.Type {
	case cloud.CommandSetReportInterval:
		if req.IntervalMs < 100 || req.IntervalMs > 3600_000 {
			return nil, cloud.Errorf(cloud.EINVALID, "interval_ms %d: must be 100 to 3600000", req.IntervalMs)
		}
		c.IntervalMs = req.IntervalMs
	case cloud.CommandSetPIDs:
		if len(req.PIDs) == 0 || len(req.PIDs) > 32 {
			return nil, cloud.Errorf(cloud.EINVALID, "pids: 1 to 32 Mode 01 PIDs in hex, e.g. [\"0C\", \"0D\"]")
		}
		for i, p := range req.PIDs {
			v, err := strconv.ParseUint(p, 16, 8)
			if err != nil || len(p) != 2 {
				return nil, cloud.Errorf(cloud.EINVALID, "pids[%d] %q: want two hex digits, e.g. \"0C\"", i, p)
			}
			c.PIDs = append(c.PIDs, 0x0100|uint16(v))
		}
	case cloud.CommandReadDTCs, cloud.CommandReportStatus:
	default:
		return nil, cloud.Errorf(cloud.EINVALID, "type %q: want set_report_interval, set_pids, read_dtcs or report_status", req.Type)
	}
	if req.Type != cloud.CommandSetReportInterval && req.IntervalMs != 0 {
		return nil, cloud.Errorf(cloud.EINVALID, "interval_ms is only for set_report_interval")
	}
	if req.Type != cloud.CommandSetPIDs && len(req.PIDs) != 0 {
		return nil, cloud.Errorf(cloud.EINVALID, "pids is only for set_pids")
	}
	return c, nil
}

// command is GET /api/v1/vehicles/{id}/commands/{cmd_id}.
func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if s.Commands == nil {
		s.Error(w, r, cloud.Errorf(cloud.EUNAVAILABLE, "commands are not configured"))
		return
	}
	c, err := s.Commands.FindCommand(r.Context(), id, r.PathValue("cmd_id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, toCommandJSON(c, s.Now()))
}
