//go:build race

package sqlite

// raceEnabled: the race detector slows SQLite's C-to-Go code many times
// over; the soak test does not run under it.
const raceEnabled = true
