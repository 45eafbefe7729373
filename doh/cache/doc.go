// Package cache keeps DNS answers in wire form, keyed by question, so that a
// cache hit is a copy with the message ID and TTLs patched in place: no
// unpacking and no re-packing. It is bounded in bytes and evicts the least
// recently used answers first.
package cache
