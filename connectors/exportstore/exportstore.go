// Package exportstore is the export store: where large results (a subject's records, export
// packages) are written instead of travelling inside Kafka messages. Objects are addressed by
// URI and carry a SHA-256 so every reader can verify what it got. It is public so that a
// connector outside Lethe writes its table files (connectors/protocol) where Lethe reads them.
package exportstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Object describes a stored object.
type Object struct {
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// Store holds objects. Implementations: a local directory (file://) here; an S3-compatible
// bucket implements the same interface.
type Store interface {
	// Create starts writing the object at uri. Nothing is visible at uri until Commit.
	Create(ctx context.Context, uri string) (Writer, error)
	// Open reads a committed object.
	Open(ctx context.Context, uri string) (io.ReadCloser, error)
	// RemoveAll deletes every object under the prefix uri (a request's export location) and
	// returns how many there were. A prefix with nothing under it is no error, so it can be
	// retried.
	RemoveAll(ctx context.Context, prefix string) (int, error)
}

// Writer streams one object. Exactly one of Commit or Abort must be called.
type Writer interface {
	io.Writer
	Commit() (Object, error)
	Abort()
}

// Dir is a Store over a local directory; URIs are file:// URLs below Root.
type Dir struct {
	Root string
}

// NewDir makes the directory if needed.
func NewDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating export directory: %w", err)
	}
	return &Dir{Root: abs}, nil
}

// URI returns the file:// URI of a path relative to the root.
func (d *Dir) URI(rel string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(d.Root, rel))}).String()
}

// path maps a URI to a file below the root, refusing anything outside it.
func (d *Dir) path(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "file" {
		return "", fmt.Errorf("export location %q is not a file:// URI", uri)
	}
	p := filepath.Clean(filepath.FromSlash(u.Path))
	if p != d.Root && !strings.HasPrefix(p, d.Root+string(filepath.Separator)) {
		return "", errors.New("export location is outside the export directory")
	}
	return p, nil
}

// Within reports whether uri names an object below prefix (a URI ending in "/"), after
// resolving "." and ".." segments, so no spelling of a path can step out of the prefix.
func Within(uri, prefix string) bool {
	u, err := url.Parse(uri)
	p, perr := url.Parse(prefix)
	if err != nil || perr != nil || u.Scheme != p.Scheme || u.Host != p.Host || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	dir := path.Clean(p.Path) + "/"
	return strings.HasPrefix(path.Clean(u.Path), dir)
}

// Create writes to a temporary file beside the target and renames it on Commit, so a reader
// never sees half an object and a crashed writer leaves nothing at the URI.
func (d *Dir) Create(_ context.Context, uri string) (Writer, error) {
	p, err := d.path(uri)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("creating export directory: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".partial-*")
	if err != nil {
		return nil, fmt.Errorf("creating export object: %w", err)
	}
	h := sha256.New()
	return &fileWriter{f: f, h: h, w: io.MultiWriter(f, h), target: p, uri: uri}, nil
}

// Open reads a committed object.
func (d *Dir) Open(_ context.Context, uri string) (io.ReadCloser, error) {
	p, err := d.path(uri)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// RemoveAll deletes the directory at prefix with everything in it, partial writes included.
func (d *Dir) RemoveAll(_ context.Context, prefix string) (int, error) {
	p, err := d.path(prefix)
	if err != nil {
		return 0, err
	}
	if p == d.Root {
		return 0, errors.New("refusing to remove the whole export directory")
	}
	n := 0
	err = filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			n++
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("listing export objects: %w", err)
	}
	if err := os.RemoveAll(p); err != nil {
		return 0, fmt.Errorf("removing export objects: %w", err)
	}
	return n, nil
}

type fileWriter struct {
	f      *os.File
	h      hash.Hash
	w      io.Writer
	n      int64
	target string
	uri    string
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *fileWriter) Commit() (Object, error) {
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return Object{}, fmt.Errorf("writing export object: %w", err)
	}
	if err := w.f.Close(); err != nil {
		_ = os.Remove(w.f.Name())
		return Object{}, fmt.Errorf("writing export object: %w", err)
	}
	if err := os.Rename(w.f.Name(), w.target); err != nil {
		_ = os.Remove(w.f.Name())
		return Object{}, fmt.Errorf("storing export object: %w", err)
	}
	return Object{URI: w.uri, SHA256: hex.EncodeToString(w.h.Sum(nil)), Bytes: w.n}, nil
}

func (w *fileWriter) Abort() {
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
}

// Verify reads the object and checks its SHA-256.
func Verify(ctx context.Context, s Store, o Object) error {
	r, err := s.Open(ctx, o.URI)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
		return fmt.Errorf("export object checksum mismatch: have %s, recorded %s", got, o.SHA256)
	}
	return nil
}
