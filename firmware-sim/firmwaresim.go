// Package firmwaresim is the simulator's deterministic vehicle model: routes,
// speed, engine state and the faults of scenarios, advanced by simulated time the
// caller supplies. It does no I/O; the GPS and ELM327 emulations and the
// transports (pty, TCP) live in subpackages, and firmware-sim/cmd wires them.
package firmwaresim
