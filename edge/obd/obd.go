// Package obd reads an engine through an ELM327-compatible OBD-II adapter.
//
// The layers, from the bytes up: ParseReply turns the adapter's raw reply
// into data lines or a typed *AdapterError (and ActionFor says what to do
// about it); ParseMessages joins the lines into one message per ECU (CAN
// frames with or without headers, multi-frame replies, the older protocols'
// lines); Mode01, Supported, DTCs and VIN read the messages per SAE J1979;
// the PID table decodes Mode 01 values. Session runs the AT command dialogue
// over an io.ReadWriter with per-command timeouts, and Source polls a
// vehicle over an edge.Device that it reopens with backoff, inferring the
// ignition and reporting trouble codes and the VIN as events.
//
// An adapter error reply (NO DATA, ?, CAN ERROR, UNABLE TO CONNECT, ...) is
// counted under "obd.errors.<code>" and never becomes a value.
package obd
