// Package edge is the in-vehicle agent's domain: the records it reads, the
// sources that read them, the durable outbox that keeps them and the uplink that
// sends them. Adapters live in subpackages (gps, obd, serial, bolt, mqtt); the
// edge-agent command wires them. This package imports none of them.
package edge
