package envelope_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/connectors/envelope"
)

func key(t testing.TB, id string, b byte) envelope.Key {
	t.Helper()
	k, err := envelope.NewKey(id, bytes.Repeat([]byte{b}, envelope.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealAndOpenAcrossRotation(t *testing.T) {
	old, err := envelope.NewRing(key(t, "k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := envelope.NewRing(key(t, "k2", 2), key(t, "k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	aad := envelope.CommandAAD("salon-db", "R1", "R1:salon-db:erase", "erase")
	plain := []byte(`{"subject":{"email":"jane@example.com"}}`)

	before, err := old.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(before.Ciphertext, "jane") || before.KeyID != "k1" || before.Alg != envelope.Algorithm {
		t.Fatalf("sealed = %+v", before)
	}
	got, err := rotated.Open(before, aad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("a ring rotated from k1 opens what k1 sealed: %q, %v", got, err)
	}
	after, _ := rotated.Seal(plain, aad)
	if after.KeyID != "k2" {
		t.Fatalf("the rotated ring seals with %s, want k2", after.KeyID)
	}
	if _, err := old.Open(after, aad); !errors.Is(err, envelope.ErrUnknownKey) {
		t.Fatalf("the old ring opening a k2 seal: %v, want ErrUnknownKey", err)
	}
	if _, err := rotated.Open(after, envelope.CommandAAD("salon-db", "R2", "R1:salon-db:erase", "erase")); err == nil {
		t.Fatal("a seal opened for another request")
	}
	tampered := *after
	tampered.Ciphertext = "A" + tampered.Ciphertext[1:]
	if _, err := rotated.Open(&tampered, aad); err == nil || strings.Contains(err.Error(), "jane") {
		t.Fatalf("tampered ciphertext: %v", err)
	}
}

func TestKeysAreChecked(t *testing.T) {
	if _, err := envelope.ParseKey("k1", "c2hvcnQ="); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	if _, err := envelope.NewKey("no spaces", make([]byte, 32)); err == nil {
		t.Error("a key id with a space was accepted")
	}
	if _, err := envelope.NewRing(key(t, "k1", 1), key(t, "k1", 2)); err == nil {
		t.Error("two keys with one id were accepted")
	}
	if _, err := envelope.NewRing(envelope.Key{ID: "k1"}); err == nil {
		t.Error("a key not made by NewKey was accepted")
	}
}

func TestParseRing(t *testing.T) {
	a, b := strings.Repeat("A", 43)+"=", strings.Repeat("B", 43)+"="
	r, err := envelope.ParseRing("k2=" + a + ", k1=" + b)
	if err != nil || r.Current() != "k2" {
		t.Fatalf("ParseRing = %v, %v", r, err)
	}
	for _, bad := range []string{"", "k1", "k1=notbase64!", "k1=" + a + ",k1=" + a} {
		if _, err := envelope.ParseRing(bad); err == nil {
			t.Errorf("ParseRing(%q) accepted", bad)
		} else if strings.Contains(err.Error(), a) {
			t.Errorf("ParseRing(%q) quotes the key: %v", bad, err)
		}
	}
}
