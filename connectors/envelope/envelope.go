// Package envelope is how a connector command carries personal data: the subject's identifiers
// and the action's parameters (a rectification's corrected values) travel encrypted with
// AES-256-GCM under a key of that connector instance only, so Kafka, its replicas and its
// dead-letter copies never hold them in clear. The key id travels with the ciphertext, so a
// connector that holds several keys (a ring) still reads commands sealed before a rotation.
//
// The format, for implementations in other languages (schemas/connector-command.schema.json):
//
//	sealed.alg        "A256GCM"
//	sealed.key_id     the id of the 32-byte key that sealed it
//	sealed.nonce      base64 (standard, padded) of the 12-byte nonce, random per message
//	sealed.ciphertext base64 of the GCM ciphertext with its 16-byte tag appended
//	additional data   "lethe.connector.command\n" + connector + "\n" + request_id + "\n" +
//	                  idempotency_key + "\n" + action (see CommandAAD)
//	plaintext         JSON {"subject": {...}, "params": {...}}, each optional
//
// The additional data binds a ciphertext to its command: copied into another command (another
// request, connector or action) it no longer opens.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Algorithm is the only value of Sealed.Alg.
const Algorithm = "A256GCM"

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// Sealed is encrypted data with what is needed to open it, as carried in a command.
type Sealed struct {
	Alg        string `json:"alg"`
	KeyID      string `json:"key_id"`
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

// KeyIDPattern is what a key id may look like.
var KeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Key is one AES-256 key and its id.
type Key struct {
	ID     string
	secret []byte
}

// NewKey checks the id and the key's length.
func NewKey(id string, secret []byte) (Key, error) {
	if !KeyIDPattern.MatchString(id) {
		return Key{}, fmt.Errorf("key id %q: want 1 to 64 letters, digits, '.', '_' or '-'", id)
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("key %s: %d bytes, want %d (generate one with: openssl rand -base64 32)", id, len(secret), KeySize)
	}
	return Key{ID: id, secret: append([]byte(nil), secret...)}, nil
}

// Secret returns a copy of the key's bytes, for writing it where a connector's program reads it.
func (k Key) Secret() []byte { return append([]byte(nil), k.secret...) }

// ParseKey decodes a key given as standard base64 (what `openssl rand -base64 32` prints).
func ParseKey(id, encoded string) (Key, error) {
	secret, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: not base64 (generate one with: openssl rand -base64 32)", id)
	}
	return NewKey(id, secret)
}

// Ring is one connector instance's keys. The first seals; every one of them opens, so a key
// retired from sealing stays in the ring until no command sealed with it can still arrive.
// A Ring is safe for concurrent use.
type Ring struct {
	keys  []Key
	aeads map[string]cipher.AEAD
}

// NewRing builds a ring; the first key is the current one.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a key ring needs at least one key")
	}
	r := &Ring{keys: keys, aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("key id %s appears twice", k.ID)
		}
		if len(k.secret) != KeySize {
			return nil, fmt.Errorf("key %s was not made with NewKey or ParseKey", k.ID)
		}
		block, err := aes.NewCipher(k.secret)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		r.aeads[k.ID] = aead
	}
	return r, nil
}

// Current is the id of the key that seals.
func (r *Ring) Current() string { return r.keys[0].ID }

// Seal encrypts plaintext under the current key, bound to aad.
func (r *Ring) Seal(plaintext, aad []byte) (*Sealed, error) {
	id := r.Current()
	aead := r.aeads[id]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("drawing a nonce: %w", err)
	}
	return &Sealed{
		Alg: Algorithm, KeyID: id,
		Nonce:      base64.StdEncoding.EncodeToString(nonce),
		Ciphertext: base64.StdEncoding.EncodeToString(aead.Seal(nil, nonce, plaintext, aad)),
	}, nil
}

// ErrUnknownKey means the ring holds no key with the sealed data's id: the connector was not
// given the key Lethe sealed with (or it was retired too early).
var ErrUnknownKey = errors.New("sealed with a key this connector does not hold")

// Open decrypts s with the key it names. Errors never quote the data.
func (r *Ring) Open(s *Sealed, aad []byte) ([]byte, error) {
	if s == nil {
		return nil, errors.New("nothing sealed")
	}
	if s.Alg != Algorithm {
		return nil, fmt.Errorf("algorithm %q is not %s", s.Alg, Algorithm)
	}
	aead, ok := r.aeads[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("key id %q: %w", s.KeyID, ErrUnknownKey)
	}
	nonce, err := base64.StdEncoding.DecodeString(s.Nonce)
	if err != nil || len(nonce) != aead.NonceSize() {
		return nil, errors.New("nonce is not 12 bytes of base64")
	}
	ct, err := base64.StdEncoding.DecodeString(s.Ciphertext)
	if err != nil {
		return nil, errors.New("ciphertext is not base64")
	}
	plain, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, fmt.Errorf("key %s does not open it: altered, or sealed for another command", s.KeyID)
	}
	return plain, nil
}

// CommandAAD is the additional data that binds a command's sealed part to the command.
func CommandAAD(connector, requestID, idempotencyKey, action string) []byte {
	return []byte("lethe.connector.command\n" + connector + "\n" + requestID + "\n" + idempotencyKey + "\n" + action)
}

// ParseRing reads a ring written as "id=base64key[,id=base64key...]", the current key first:
// how a connector outside Lethe is given its keys (LETHE_CONNECTOR_KEYS in the examples).
func ParseRing(s string) (*Ring, error) {
	var keys []Key
	for _, part := range strings.Split(s, ",") {
		id, encoded, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, errors.New(`a key ring is written "id=base64key[,id=base64key...]"`)
		}
		k, err := ParseKey(id, encoded)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return NewRing(keys...)
}
