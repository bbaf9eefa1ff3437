// Package storetest has helpers for tests of what keeps state in a store
// directory.
package storetest

import (
	"os"
	"path/filepath"
	"testing"
)

// CopyDir copies the files of a store directory into a new temporary one,
// as they are at this moment: what a crash (or a power cut, for what was
// synced) would leave behind.
func CopyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
