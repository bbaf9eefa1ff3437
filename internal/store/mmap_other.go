//go:build !linux

package store

import (
	"errors"
	"os"
)

func mapSegment(*os.File, int) ([]byte, error) {
	return nil, errors.New("store: mapped segments need Linux")
}

func unmapSegment([]byte) error { return nil }

func prefault([]byte) {}
