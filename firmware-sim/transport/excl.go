package transport

import (
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// exclWatcher clears the exclusive-use flag of a terminal each time one of
// its clients closes it (see PTY).
type exclWatcher struct {
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	in   *os.File // the inotify descriptor; nil when polling
}

// fallbackInterval is how often the flag is cleared where inotify cannot
// watch the device.
const fallbackInterval = 500 * time.Millisecond

// watchExclusive starts watching slave's device for closes.
func watchExclusive(slave *os.File) *exclWatcher {
	w := &exclWatcher{done: make(chan struct{})}
	clear := func() {
		_ = control(slave, func(fd int) error { return unix.IoctlSetInt(fd, unix.TIOCNXCL, 0) })
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err == nil {
		if _, err = unix.InotifyAddWatch(fd, slave.Name(), unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE); err != nil {
			unix.Close(fd)
		}
	}
	w.wg.Add(1)
	if err != nil {
		go func() {
			defer w.wg.Done()
			t := time.NewTicker(fallbackInterval)
			defer t.Stop()
			for {
				select {
				case <-w.done:
					return
				case <-t.C:
					clear()
				}
			}
		}()
		return w
	}
	w.in = os.NewFile(uintptr(fd), "inotify "+slave.Name())
	go func() {
		defer w.wg.Done()
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			n, err := w.in.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				if ev.Mask&(unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE) != 0 {
					clear()
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	return w
}

// stop ends the watch and waits for its goroutine.
func (w *exclWatcher) stop() {
	w.once.Do(func() {
		close(w.done)
		if w.in != nil {
			w.in.Close()
		}
	})
	w.wg.Wait()
}
