//go:build race

package session_test

// raceEnabled: the race detector slows the 10,000-call load count ~10
// times; it is a measurement (BENCHMARKS.md), run without -race.
const raceEnabled = true
