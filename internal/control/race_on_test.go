//go:build race

package control_test

// raceEnabled: the race detector slows the listing of a million sessions
// to minutes; under it the test lists fewer.
const raceEnabled = true
