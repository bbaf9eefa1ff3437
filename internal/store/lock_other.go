//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import "os"

func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
