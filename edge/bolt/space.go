package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/fleetgate/fleetgate/shared/telemetry"
)

// The filesystem's share of the bounds.
//
// MaxBytes is what the outbox may use; the filesystem under it may hold
// less (a small data partition; other files filling it). The outbox's cap is
// therefore the smaller of MaxBytes and what the filesystem can give the
// file: the blocks the file has now plus the free blocks, less FSReserve
// for everything else in the data directory. It is read (statfs) when the
// outbox opens and again at most every FSCheckEvery by Append, and the
// record budget (see Budget) follows it, so the thinning and dropping of a
// full outbox start before the disk fills.
//
// bbolt never shrinks its file and writes every commit into free pages of
// it (copy on write) or past its end; so keeping the records within half of
// the cap leaves the file room for its commits. Should the disk fill all the
// same (another writer, a wrong estimate), a commit fails with ENOSPC: the
// outbox then takes its cap down to the blocks the file has, drops records
// in a transaction of its own (as a reached cap does: thin, then oldest,
// counted and reported) and tries again. That transaction needs a few free
// pages too; a ballast file (BallastBytes, path + ".reserve") kept beside
// the outbox is deleted to give them when even it fails, and made again
// when there is room.

// Defaults of the filesystem checks.
const (
	DefaultFSReserve    = 64 << 10 // bytes left to the rest of the data directory, at least
	DefaultFSCheckEvery = time.Second
	BallastBytes        = 64 << 10 // room for the transaction that frees space, 16 pages
	ballastSuffix       = ".reserve"
)

// space is the outbox's view of its filesystem. Its methods are safe for
// concurrent use.
type space struct {
	path    string // the outbox file
	reserve int64
	every   time.Duration

	mu       sync.Mutex
	checked  time.Time
	capBytes int64 // what the filesystem lets the file use; 0 unknown
	total    int64 // the filesystem's size
	ballast  bool
	noSpace  uint64 // commits that met ENOSPC
	limited  bool   // capBytes below the configured cap, as last reported
	pending  *telemetry.Event
}

// usage reads what the filesystem lets the file use: the blocks it holds
// plus the free blocks, less the reserve.
func (s *space) usage() (capBytes, total int64, err error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(s.path), &fs); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", filepath.Dir(s.path), err)
	}
	total = int64(fs.Blocks) * int64(fs.Bsize)
	reserve := max(s.reserve, total/100)
	return allocated(s.path) + int64(fs.Bavail)*int64(fs.Bsize) - reserve, total, nil
}

// allocated returns the bytes the file holds on disk (a sparse file's
// holes are not counted), 0 when it cannot be read.
func allocated(path string) int64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return min(st.Blocks*512, st.Size)
}

// check reads the filesystem again if FSCheckEvery has passed (or force),
// makes the ballast when there is room for it, and returns the cap the
// filesystem sets (0: unknown).
func (s *space) check(now time.Time, force bool) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && !s.checked.IsZero() && now.Sub(s.checked) < s.every && now.Sub(s.checked) >= 0 {
		return s.capBytes
	}
	s.checked = now
	capBytes, total, err := s.usage()
	if err != nil {
		return s.capBytes // keep what we knew
	}
	if !s.ballast && capBytes > 2*BallastBytes {
		if err := makeBallast(s.path + ballastSuffix); err == nil {
			s.ballast = true
			capBytes -= BallastBytes
		}
	}
	s.capBytes, s.total = max(capBytes, 0), total
	return s.capBytes
}

// full notes a commit that met ENOSPC: the file cannot grow, so the cap is
// what it holds now.
func (s *space) full() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noSpace++
	s.capBytes = max(allocated(s.path)-s.reserve/2, 0)
}

// dropBallast deletes the ballast to give a transaction that frees space the
// pages it needs; it reports whether there was one.
func (s *space) dropBallast() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ballast {
		return false
	}
	s.ballast = false
	return os.Remove(s.path+ballastSuffix) == nil
}

// makeBallast writes a file of BallastBytes whose blocks are really
// allocated (zeros written, not a hole).
func makeBallast(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, BallastBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// noSpace reports whether err says the disk is full, or bbolt's MaxSize
// backstop was reached.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func maxSizeReached(err error) bool { return errors.Is(err, bolterrors.ErrMaxSizeReached) }

// limit returns the cap in force: the configured one, or the filesystem's
// when smaller (0: none). It notes a change between the two for an
// EventOutboxTrouble that the next append carries.
func (s *space) limit(maxBytes int64, now time.Time) int64 {
	fsCap := s.check(now, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	limited := fsCap > 0 && (maxBytes <= 0 || fsCap < maxBytes)
	eff := maxBytes
	if limited {
		eff = fsCap
	}
	if limited != s.limited {
		s.limited = limited
		ev := telemetry.Event{UnixMs: now.UnixMilli(), Type: telemetry.EventOutboxTrouble, Code: "ok", Value: eff,
			Detail: fmt.Sprintf("the filesystem has room for the configured cap of %s again", sizeText(maxBytes))}
		if limited {
			ev.Code, ev.Detail = "filesystem_full", s.troubleLocked(maxBytes)
		}
		s.pending = &ev
	}
	return eff
}

// takeEvent returns the trouble event not yet appended, if any.
func (s *space) takeEvent() *telemetry.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.pending
	s.pending = nil
	return ev
}

// putBack returns an event whose append failed.
func (s *space) putBack(ev *telemetry.Event) {
	if ev == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = ev
	}
}

// trouble returns what is wrong, "" when the filesystem holds the
// configured cap.
func (s *space) trouble(maxBytes int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.limited {
		return ""
	}
	return s.troubleLocked(maxBytes)
}

func (s *space) troubleLocked(maxBytes int64) string {
	msg := fmt.Sprintf("filesystem full: it holds %s of the outbox's configured %s; old records are thinned and dropped past that",
		sizeText(s.capBytes), sizeText(maxBytes))
	if s.noSpace > 0 {
		msg += fmt.Sprintf(" (%d commits met no space left on device)", s.noSpace)
	}
	return msg
}

func (s *space) stats() (capBytes, total int64, noSpace uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.capBytes, s.total, s.noSpace
}

// sizeText writes a size in bytes, KiB or MiB.
func sizeText(n int64) string {
	switch {
	case n <= 0:
		return "no limit"
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
