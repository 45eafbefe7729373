package server

import (
	"crypto/tls"

	"github.com/quic-go/quic-go/http3"
)

// tlsConfig is the TLS of the TCP listener: TLS 1.3, and TLS 1.2 with
// ECDHE key exchange and AEAD ciphers only (AES-GCM, ChaCha20-Poly1305),
// for ECDSA and RSA certificates alike: Mozilla's "intermediate" profile,
// as Caddy serves it. Go picks among them in its own order (AES-GCM first
// where the CPU has AES instructions), and TLS 1.3 suites are all AEAD.
//
// Curves, session tickets and their keys are crypto/tls's defaults: a
// ticket key is made every 24 hours and kept 7 days to read tickets with,
// and a ticket is accepted for 7 days at most.
//
// ALPN is left to net/http, which offers h2 and http/1.1.
func tlsConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		GetCertificate: getCertificate,
	}
}

// quicTLSConfig is the TLS of the QUIC listener: tlsConfig at TLS 1.3,
// the only version QUIC has, with ALPN h3.
func quicTLSConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	c := tlsConfig(getCertificate)
	c.MinVersion = tls.VersionTLS13
	return http3.ConfigureTLSConfig(c)
}
