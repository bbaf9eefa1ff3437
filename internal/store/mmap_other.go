//go:build !linux

package store

import (
	"errors"
	"os"
)

func mapShared(*os.File, int) ([]byte, error) {
	return nil, errors.New("store: the ring needs Linux")
}

func unmap([]byte) error { return nil }

func prefault([]byte) {}
