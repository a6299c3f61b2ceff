package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// OpenSSLHMAC is the hex HMAC-SHA256 of msg under key as `openssl dgst -sha256 -hmac` computes
// it: an implementation independent of Lethe's, to check its signatures against.
func OpenSSLHMAC(t testing.TB, key, msg string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		Unavailable(t, "openssl is not installed")
	}
	cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", key)
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl dgst: %v", err)
	}
	// "SHA2-256(stdin)= <hex>" (OpenSSL 3) or "(stdin)= <hex>".
	_, hex, ok := strings.Cut(strings.TrimSpace(string(out)), "= ")
	if !ok {
		t.Fatalf("openssl printed %q", out)
	}
	return hex
}
