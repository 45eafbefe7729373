// Package metrics exports porta's counters to Prometheus. The counters
// themselves live where the work is done, as atomic integers in the
// packages that do it (doh, tunnel, the server's listeners), which know
// nothing of Prometheus; a Set reads them when it is scraped. Only this
// package, server and client import the Prometheus client library.
package metrics
