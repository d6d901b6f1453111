// Package obd reads an engine through an ELM327-compatible OBD-II adapter:
// ParseReply turns the adapter's raw reply into data lines or a typed error,
// the PID table decodes SAE J1979 Mode 01 values, Session runs the AT
// command dialogue over an io.ReadWriter with per-command timeouts, and Source
// polls the configured PIDs over an edge.Device that it reopens with backoff.
//
// An adapter error reply (NO DATA, ?, CAN ERROR, UNABLE TO CONNECT, ...) is
// counted under "obd.errors.<code>" and never becomes a value.
package obd
