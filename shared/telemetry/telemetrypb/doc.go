// Package telemetrypb is the protoc-generated Go code for telemetry.proto, the
// Fleetgate wire schema. Regenerate it with `make proto`; never edit it by hand.
// Most code should use package telemetry, which wraps these messages with the
// version byte, compression and the columnar row conversion.
package telemetrypb
