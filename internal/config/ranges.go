package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// Ranges of the durations and counts the file may set. Outside its range
// an option is refused, naming the option and the range: a huge value must
// not overflow a time.Duration (limit = 9300000000 once ended every call
// at once), and a tiny one must not turn housekeeping into a busy loop.
// config.ini.sample documents them.
const (
	MaxLimit          = 30 * 24 * 3600 // limit, prepaid_limit: seconds (30 days)
	MaxStaleTimeout   = 30 * 24 * time.Hour
	MaxSetupTime      = 24 * time.Hour
	MaxCheckInterval  = time.Hour
	MinProxyTimeout   = time.Millisecond
	MaxProxyTimeout   = time.Minute
	MinEngineTimeout  = time.Millisecond
	MaxEngineTimeout  = time.Minute
	MaxMaxConnections = 100000
	MinSyncInterval   = time.Millisecond
	MaxSyncInterval   = 10 * time.Second
	// MaxRecheckInterval bounds recheck_interval (MinRecheckInterval is
	// beside its default).
	MaxRecheckInterval = 24 * time.Hour
	// MaxFileSize bounds config.ini: a larger file (or /dev/zero) is not
	// a configuration.
	MaxFileSize = 1 << 20
)

// span is an option's allowed range of durations.
type span struct{ min, max time.Duration }

// describe renders the range in the option's unit.
func (s span) describe(unit time.Duration) string {
	name := map[time.Duration]string{time.Second: "seconds", time.Millisecond: "milliseconds"}[unit]
	return fmt.Sprintf("a number of %s from %s to %s", name, inUnit(s.min, unit), inUnit(s.max, unit))
}

func inUnit(d, unit time.Duration) string {
	if d%unit == 0 {
		return fmt.Sprint(int64(d / unit))
	}
	return fmt.Sprint(float64(d) / float64(unit))
}

// readFile reads a configuration file: a regular file of at most
// MaxFileSize bytes. Anything else is refused at once: the open does not
// wait for a FIFO's writer, and a device such as /dev/zero is never read.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fileType(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%d bytes, larger than the %d a configuration may have", fi.Size(), MaxFileSize)
	}
	// The file may grow after the stat: read one byte past the bound.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("larger than the %d bytes a configuration may have", MaxFileSize)
	}
	return data, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}
