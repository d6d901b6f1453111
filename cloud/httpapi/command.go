package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
	IntervalMs int64             `json:"interval_ms,omitempty"`
	PIDs       []string          `json:"pids,omitempty"`
	TTLs       *int64            `json:"ttl_s,omitempty"`
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
	Cancelled  *Time              `json:"cancelled,omitempty"`
	Token      string             `json:"token,omitempty"`
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
		Status: c.Status(now), Created: Time(c.CreatedAt), Expires: Time(c.ExpiresAt), Token: c.Token,
		Sent: optionalTime(c.SentAt), Cancelled: optionalTime(c.CancelledAt)}
	for _, p := range c.PIDs {
		out.PIDs = append(out.PIDs, fmt.Sprintf("%02X", p&0xff))
	}
	if r := c.Result; r != nil {
		out.Result = &commandResultJSON{OK: r.OK, Error: r.Error, DTCs: r.DTCs, Time: Time(r.Time), Received: Time(r.ReceivedAt)}
	}
	return out
}

// createCommand is POST /api/v1/vehicles/{id}/commands: {"type":
// "set_report_interval"|"set_pids"|"read_dtcs"|"report_status",
// "interval_ms": N, "pids": ["0C", ...], "ttl_s": N}, with an optional
// Idempotency-Key header. It stores the command and sends it; it answers
// 202 with the command: "sent" once the broker took it, "pending" when not
// (the server retries it until it expires or is cancelled). The same key
// again answers with the command it made (Idempotent-Replayed: true); the
// same key with another body is 409.
func (s *Server) createCommand(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	if err == nil && (s.Commands == nil || s.Sender == nil) {
		err = cloud.Errorf(cloud.EUNAVAILABLE, "commands are not configured")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if err := validKey(key); err != nil {
		s.Error(w, r, err)
		return
	}
	var req commandRequest
	if err := decodeBody(r, "command body", &req); err != nil {
		s.Error(w, r, err)
		return
	}
	c, err := s.newCommand(id, &req)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	canonical, _ := json.Marshal(req) // the request as parsed: spacing and key order do not matter
	sum := sha256.Sum256(canonical)
	c.IdempotencyKey, c.RequestHash, c.Token = key, hex.EncodeToString(sum[:]), who(r).token.Name
	stored, created, err := s.Commands.CreateCommand(r.Context(), c)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/vehicles/"+id+"/commands/"+stored.ID)
	if !created {
		if stored.RequestHash != c.RequestHash {
			s.Error(w, r, cloud.Errorf(cloud.ECONFLICT, "Idempotency-Key %q was used for another request (command %s): use a new key for a new command", key, stored.ID))
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		s.json(w, http.StatusAccepted, toCommandJSON(stored, s.Now()))
		return
	}
	if err := s.Sender.Send(r.Context(), c); err != nil {
		s.Logger.Warn("command not sent yet; it stays pending and is retried", "vehicle_id", id, "command", c.ID, "err", err)
	}
	s.json(w, http.StatusAccepted, toCommandJSON(c, s.Now()))
}

// validKey checks an Idempotency-Key: empty (none), or 1 to 255 printable
// ASCII characters.
func validKey(k string) error {
	if len(k) > 255 {
		return cloud.Errorf(cloud.EINVALID, "Idempotency-Key: at most 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return cloud.Errorf(cloud.EINVALID, "Idempotency-Key: printable ASCII without spaces, e.g. a UUID")
		}
	}
	return nil
}

// newCommand checks req and makes the command with a random id.
func (s *Server) newCommand(vehicle string, req *commandRequest) (*cloud.Command, error) {
	ttl := DefaultCommandTTL
	if req.TTLs != nil {
		if *req.TTLs < 1 || *req.TTLs > int64(MaxCommandTTL/time.Second) {
			return nil, cloud.Errorf(cloud.EINVALID, "ttl_s %d: must be 1 to %d", *req.TTLs, int64(MaxCommandTTL/time.Second))
		}
		ttl = time.Duration(*req.TTLs) * time.Second
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

// commandArgs reads {id} and {cmd_id} and checks there are no parameters.
func (s *Server) commandArgs(r *http.Request) (string, string, error) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, nil)
	}
	if err == nil && s.Commands == nil {
		err = cloud.Errorf(cloud.EUNAVAILABLE, "commands are not configured")
	}
	return id, r.PathValue("cmd_id"), err
}

// command is GET /api/v1/vehicles/{id}/commands/{cmd_id}.
func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	id, cmd, err := s.commandArgs(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	c, err := s.Commands.FindCommand(r.Context(), id, cmd)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, toCommandJSON(c, s.Now()))
}

// cancelCommand is POST /api/v1/vehicles/{id}/commands/{cmd_id}/cancel: a
// pending command is never sent; 409 for any other.
func (s *Server) cancelCommand(w http.ResponseWriter, r *http.Request) {
	id, cmd, err := s.commandArgs(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	c, err := s.Commands.CancelCommand(r.Context(), id, cmd, s.Now().UTC())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, toCommandJSON(c, s.Now()))
}

// commands is GET /api/v1/vehicles/{id}/commands: a page of the vehicle's
// commands, newest first.
func (s *Server) commands(w http.ResponseWriter, r *http.Request) {
	id, err := vehicleID(r)
	if err == nil {
		err = checkParams(r, []string{"limit", "after"})
	}
	if err == nil && s.Commands == nil {
		err = cloud.Errorf(cloud.EUNAVAILABLE, "commands are not configured")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	scope := "commands " + id
	limit, after, err := parsePage(r.URL.Query(), scope)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	cs, next, err := s.Commands.FindCommands(r.Context(), cloud.CommandFilter{VehicleID: id, After: after, Limit: limit})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	now := s.Now()
	out := struct {
		VehicleID string        `json:"vehicle_id"`
		Commands  []commandJSON `json:"commands"`
		Next      string        `json:"next,omitempty"`
	}{VehicleID: id, Commands: make([]commandJSON, 0, len(cs)), Next: cursorString(next, scope)}
	for _, c := range cs {
		out.Commands = append(out.Commands, toCommandJSON(c, now))
	}
	s.json(w, http.StatusOK, out)
}
