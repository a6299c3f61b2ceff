package envelope_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/connectors/envelope"
)

// FuzzOpen feeds the opener what a hostile or broken command topic could carry. Whatever the
// input, Open does not panic, its errors never quote the plaintext, and the only thing that
// opens is the genuine envelope with the additional data it was sealed for.
func FuzzOpen(f *testing.F) {
	ring, err := envelope.NewRing(key(f, "k1", 7))
	if err != nil {
		f.Fatal(err)
	}
	plain := []byte(`{"subject":{"email":"ada@example.com"}}`)
	aad := string(envelope.CommandAAD("salon-db", "R-1", "R-1:salon-db:erase", "erase"))
	sealed, err := ring.Seal(plain, []byte(aad))
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := json.Marshal(sealed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine, aad)
	f.Add(genuine, string(envelope.CommandAAD("salon-db", "R-2", "R-2:salon-db:erase", "erase")))
	f.Add([]byte(`{"alg":"A256GCM","key_id":"k1","nonce":"AAAAAAAAAAAAAAAA","ciphertext":""}`), aad)
	f.Add([]byte(`{"alg":"none","key_id":"k1"}`), aad)
	f.Add([]byte(`{}`), "")

	f.Fuzz(func(t *testing.T, raw []byte, gotAAD string) {
		var s envelope.Sealed
		if json.Unmarshal(raw, &s) != nil {
			return
		}
		out, err := ring.Open(&s, []byte(gotAAD))
		if err != nil {
			if strings.Contains(err.Error(), "ada@example.com") {
				t.Fatalf("an error quotes the plaintext: %v", err)
			}
			return
		}
		if gotAAD != aad || !bytes.Equal(out, plain) {
			t.Fatalf("opened something other than the genuine envelope: aad %q, plaintext %q", gotAAD, out)
		}
	})
}
