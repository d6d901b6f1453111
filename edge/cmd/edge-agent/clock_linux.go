package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// maxErrorUnsynced is the kernel's maximum error (µs) at and above which
// the clock counts as unsynchronised: the kernel's own bound (NTP_PHASE_LIMIT
// 16 s), where it sets STA_UNSYNC.
const maxErrorUnsynced = 16_000_000

// kernelSynced reports whether the kernel says the system clock is
// synchronised (adjtimex: not TIME_ERROR, no STA_UNSYNC, a maximum error
// under 16 s): an NTP client or a PPS discipline keeps it so. A gateway
// that boots without a real-time clock and without network is not.
func kernelSynced() (bool, error) {
	var tx unix.Timex // modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, fmt.Errorf("adjtimex: %w", err)
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0 && tx.Maxerror < maxErrorUnsynced, nil
}
