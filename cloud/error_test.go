package cloud_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fleetgate/fleetgate/cloud"
)

func TestErrorCode(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		name     string
		err      error
		code     string
		message  string
		wrapping error
	}{
		{"nil", nil, "", "", nil},
		{"plain error", errors.New("boom"), cloud.EINTERNAL, "internal error", nil},
		{"coded", cloud.Errorf(cloud.ENOTFOUND, "vehicle %q not found", "veh-9"), cloud.ENOTFOUND, `vehicle "veh-9" not found`, nil},
		{"wrapped coded", fmt.Errorf("find: %w", cloud.Errorf(cloud.EINVALID, "bad limit")), cloud.EINVALID, "bad limit", nil},
		{"with cause", cloud.Errorf(cloud.EUNAVAILABLE, "postgres: %w", cause), cloud.EUNAVAILABLE, "postgres: connection refused", cause},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloud.ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode = %q, want %q", got, tt.code)
			}
			if got := cloud.ErrorMessage(tt.err); got != tt.message {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.message)
			}
			if tt.wrapping != nil && !errors.Is(tt.err, tt.wrapping) {
				t.Errorf("%v does not wrap %v", tt.err, tt.wrapping)
			}
		})
	}
}
