package telemetry

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultNamespace is the topic root: fleet/v1/{id}/... (the name predates
// protocol version 2 and stays, since every deployment's access rules use it).
const DefaultNamespace Namespace = "fleet/v1"

// Kind names one of the per-vehicle topics.
type Kind string

// The per-vehicle topics, relative to Namespace/{vehicle id}/.
const (
	// KindBatchV2 is the vehicle's own topic, Namespace/{vehicle id} itself:
	// edge → cloud, QoS 1, a Batch in version 2 (EncodeBatchV2). The topic is
	// as short as it can be and still name the vehicle, which the broker's
	// access rules need: on a live link it is a third of each message.
	KindBatchV2   Kind = ""
	KindBatch     Kind = "up/batch"      // edge → cloud, QoS 1: a Batch in version 1
	KindStatus    Kind = "up/status"     // edge → cloud, QoS 1, retained: a Status; also the last will
	KindCmdResult Kind = "up/cmd-result" // edge → cloud, QoS 1: a CommandResult
	KindAck       Kind = "down/ack"      // cloud → edge, QoS 1: an Ack, after the commit
	KindCmd       Kind = "down/cmd"      // cloud → edge, QoS 1: a Command
)

var kinds = []Kind{KindBatchV2, KindBatch, KindStatus, KindCmdResult, KindAck, KindCmd}

// ErrVehicleID is wrapped by errors for a vehicle id outside [A-Za-z0-9_-]{1,64}.
var ErrVehicleID = errors.New("invalid vehicle id")

// ErrTopic is wrapped by errors for a topic that is not one of the protocol's.
var ErrTopic = errors.New("not a fleet topic")

// ValidVehicleID returns nil if id matches [A-Za-z0-9_-]{1,64}, and an error
// wrapping ErrVehicleID that says why otherwise.
func ValidVehicleID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("%w %q: length %d, want 1 to 64", ErrVehicleID, id, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: byte %d (%q) is not one of A-Z a-z 0-9 _ -", ErrVehicleID, id, i, c)
		}
	}
	return nil
}

// Namespace is the topic root under which a deployment's vehicles publish:
// DefaultNamespace in production. A different root (for example
// "test-1234/fleet/v1") keeps tests and tenants that share a broker apart.
type Namespace string

// Topic returns Namespace/{vehicleID}/{kind}, or Namespace/{vehicleID} for
// KindBatchV2. It returns an error wrapping ErrVehicleID for an invalid id.
func (n Namespace) Topic(vehicleID string, kind Kind) (string, error) {
	if err := ValidVehicleID(vehicleID); err != nil {
		return "", err
	}
	if kind == KindBatchV2 {
		return string(n) + "/" + vehicleID, nil
	}
	return string(n) + "/" + vehicleID + "/" + string(kind), nil
}

// Filter returns the subscription filter for kind across all vehicles,
// Namespace/+/{kind} (Namespace/+ for KindBatchV2).
func (n Namespace) Filter(kind Kind) string {
	if kind == KindBatchV2 {
		return string(n) + "/+"
	}
	return string(n) + "/+/" + string(kind)
}

// SharedFilter returns the shared-subscription filter
// $share/{group}/Namespace/+/{kind}, through which replicas split the messages.
func (n Namespace) SharedFilter(group string, kind Kind) string {
	return "$share/" + group + "/" + n.Filter(kind)
}

// Parse splits a topic of this namespace into its vehicle id and kind. It returns
// an error wrapping ErrTopic or ErrVehicleID for any other topic.
func (n Namespace) Parse(topic string) (vehicleID string, kind Kind, err error) {
	rest, ok := strings.CutPrefix(topic, string(n)+"/")
	if !ok {
		return "", "", fmt.Errorf("%w %q: not under %s/", ErrTopic, topic, n)
	}
	id, k, sub := strings.Cut(rest, "/")
	if sub && k == "" {
		return "", "", fmt.Errorf("%w %q: empty kind after the vehicle id", ErrTopic, topic)
	}
	if err := ValidVehicleID(id); err != nil {
		return "", "", err
	}
	for _, want := range kinds {
		if Kind(k) == want {
			return id, want, nil
		}
	}
	return "", "", fmt.Errorf("%w %q: unknown kind %q", ErrTopic, topic, k)
}

// Valid returns an error if n is empty, has wildcards or starts or ends with '/'.
func (n Namespace) Valid() error {
	s := string(n)
	if s == "" || strings.ContainsAny(s, "+#\x00") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.HasPrefix(s, "$") {
		return fmt.Errorf("invalid topic namespace %q", s)
	}
	return nil
}
