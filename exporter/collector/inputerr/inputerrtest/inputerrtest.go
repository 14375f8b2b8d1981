// Package inputerrtest helps a parser's tests check that its errors, its
// log lines and the landing page never quote the input: plant Marker where a
// secret could sit, then Check every text the exporter would show.
package inputerrtest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Marker stands for a secret in the input. Its mixed case and digits make
// it occur nowhere by chance, and it has no separator, so any parser that
// reads it reads it as one token.
const Marker = "Kq7wSeCrEtZ9x"

// minPiece is the shortest piece of Marker that counts as a leak: an error
// that cuts a token to a few characters would otherwise pass.
const minPiece = 5

// Leaks reports whether s holds Marker or a piece of it of minPiece bytes
// or more.
func Leaks(s string) bool {
	for i := 0; i+minPiece <= len(Marker); i++ {
		if strings.Contains(s, Marker[i:i+minPiece]) {
			return true
		}
	}
	return false
}

// Check fails t when text (an error message, log output, a page) leaks
// Marker; what says which text it was.
func Check(t testing.TB, what, text string) {
	t.Helper()
	if Leaks(text) {
		t.Errorf("%s quotes the input (marker %s):\n%s", what, Marker, text)
	}
}

// CheckErr is Check for an error; nil passes.
func CheckErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		Check(t, what, err.Error())
	}
}

// Plant returns a copy of b with Marker inserted at byte at (modulo
// len(b)+1). A fuzz target takes at as one more argument, so that over its
// runs the marker lands in every position (inside a token, in place of a
// value, between fields) and a failing input reproduces.
func Plant(b []byte, at uint) []byte {
	i := int(at % uint(len(b)+1))
	out := make([]byte, 0, len(b)+len(Marker))
	out = append(out, b[:i]...)
	out = append(out, Marker...)
	return append(out, b[i:]...)
}

// Logger returns a logger that writes text lines into a buffer, and a
// function returning what was written so far (safe for concurrent use).
func Logger() (*slog.Logger, func() string) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	l := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return l, func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
