package httpapi

import (
	"net/http"

	"github.com/fleetgate/fleetgate/cloud"
)

// Route is one endpoint: its ServeMux pattern, the least role a token needs
// for it (cloud.RoleNone: none needed), and whether it streams (no request
// timeout).
type Route struct {
	Pattern string // "GET /api/v1/vehicles/{id}"
	Role    cloud.Role
	Stream  bool
	handler http.HandlerFunc
}

// Routes lists every endpoint the Server serves: the one place a route is
// added. Each must also be in openapi.yaml (a test checks both ways).
func (s *Server) Routes() []Route { return s.routes() }

func (s *Server) routes() []Route {
	const (
		public   = cloud.RoleNone
		viewer   = cloud.RoleViewer
		operator = cloud.RoleOperator
		admin    = cloud.RoleAdmin
	)
	rs := []Route{
		{Pattern: "GET /health", Role: public, handler: s.health},
		{Pattern: "GET /ready", Role: public, handler: s.ready},
		{Pattern: "GET /openapi.json", Role: public, handler: s.openAPI},
		{Pattern: "GET /docs", Role: public, handler: s.docs},

		{Pattern: "POST /api/v1/session", Role: public, handler: s.signIn},
		{Pattern: "GET /api/v1/session", Role: viewer, handler: s.session},
		{Pattern: "DELETE /api/v1/session", Role: public, handler: s.signOut},

		{Pattern: "GET /api/v1/vehicles", Role: viewer, handler: s.vehicles},
		{Pattern: "GET /api/v1/vehicles/{id}", Role: viewer, handler: s.vehicle},
		{Pattern: "GET /api/v1/vehicles/{id}/positions", Role: viewer, handler: s.positions},
		{Pattern: "GET /api/v1/vehicles/{id}/obd", Role: viewer, handler: s.obd},
		{Pattern: "GET /api/v1/vehicles/{id}/events", Role: viewer, handler: s.events},
		{Pattern: "GET /api/v1/vehicles/{id}/trouble-codes", Role: viewer, handler: s.troubleCodes},
		{Pattern: "GET /api/v1/vehicles/{id}/device-history", Role: viewer, handler: s.deviceHistory},
		{Pattern: "GET /api/v1/vehicles/{id}/commands", Role: viewer, handler: s.commands},
		{Pattern: "POST /api/v1/vehicles/{id}/commands", Role: operator, handler: s.createCommand},
		{Pattern: "GET /api/v1/vehicles/{id}/commands/{cmd_id}", Role: viewer, handler: s.command},
		{Pattern: "POST /api/v1/vehicles/{id}/commands/{cmd_id}/cancel", Role: operator, handler: s.cancelCommand},
		{Pattern: "GET /api/v1/vehicles/{id}/trips", Role: viewer, handler: s.trips},
		{Pattern: "GET /api/v1/vehicles/{id}/trips/{trip_id}", Role: viewer, handler: s.trip},
		{Pattern: "GET /api/v1/live", Role: viewer, Stream: true, handler: s.live},

		{Pattern: "GET /api/v1/dead-letters", Role: admin, handler: s.deadLetters},
		{Pattern: "GET /api/v1/tokens", Role: admin, handler: s.tokens},
		{Pattern: "POST /api/v1/tokens", Role: admin, handler: s.createToken},
		{Pattern: "DELETE /api/v1/tokens/{name}", Role: admin, handler: s.revokeToken},
	}
	if s.Metrics != nil {
		rs = append(rs, Route{Pattern: "GET /metrics", Role: viewer, handler: s.Metrics.ServeHTTP})
	}
	return rs
}
