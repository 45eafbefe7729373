// Package selfsigned makes self-signed TLS certificates and their SHA-256 pins.
package selfsigned

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Validity is how long a certificate made here is valid: a year. Public
// CAs may not issue for longer than 398 days, and testssl.sh calls more
// than 825 days too long.
const Validity = 365 * 24 * time.Hour

// Generate makes a P-256 key and a certificate for hosts (names or IP
// addresses), valid from an hour ago for Validity. It returns both in PEM.
func Generate(hosts ...string) (certPEM, keyPEM []byte, err error) {
	return GenerateAt(time.Now(), hosts...)
}

// GenerateAt is Generate as if the clock said now.
func GenerateAt(now time.Time, hosts ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return Issue(key, now, hosts...)
}

// Issue makes a certificate for key and hosts (names or IP addresses),
// valid from an hour before now for Validity, and returns it and the key
// in PEM. key is an *ecdsa.PrivateKey, *rsa.PrivateKey or
// ed25519.PrivateKey.
func Issue(key crypto.Signer, now time.Time, hosts ...string) (certPEM, keyPEM []byte, err error) {
	names := pkix.Name{CommonName: "localhost"}
	if len(hosts) > 0 {
		names.CommonName = hosts[0]
	}
	var dns []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	certPEM, err = issue(key, now, names, dns, ips)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Renew issues the certificate in certPEM again for the same key and
// names, and the DNS names in add it does not have yet ("" is none), valid from an
// hour before now for Validity. The key, and so the pin, stay the same.
func Renew(certPEM, keyPEM []byte, now time.Time, add ...string) ([]byte, error) {
	pair, err := Pair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("renew: the key cannot sign")
	}
	old := pair.Leaf
	names := slices.Clone(old.DNSNames)
	for _, n := range add {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return issue(key, now, pkix.Name{CommonName: old.Subject.CommonName}, names, old.IPAddresses)
}

func issue(key crypto.Signer, now time.Time, subject pkix.Name, dns []string, ips []net.IP) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Pin is the SHA-256 of a certificate's public key (its SubjectPublicKeyInfo)
// in the form curl's --pinnedpubkey and porta's --pin take: "sha256//BASE64".
// Pinning the key, not the certificate, survives re-issuing with the same key.
func Pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

// Pair parses Generate's output into a tls.Certificate with Leaf set.
func Pair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0])
	return cert, err
}
