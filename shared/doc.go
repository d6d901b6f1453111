// Package shared holds Fleetgate's wire protocol and nothing else: the telemetry
// schema and codec (package telemetry) shared by the edge agent, the cloud server
// and the simulator. No I/O, no logging, no goroutines live under shared/.
package shared
