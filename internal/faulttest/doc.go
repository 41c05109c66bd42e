// Package faulttest holds fault tests of the whole daemon, in process and
// on loopback only: an upstream that fails for a while, then recovers,
// while deliveries keep coming. Time that the daemon waits is simulated by
// a fake clock wherever the daemon takes one.
package faulttest
