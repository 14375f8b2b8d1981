// Package inputerr builds the errors the exporter reports about bad input
// (a file, a socket's answer, a D-Bus reply) so that they name where the
// problem is and what kind it is, and never carry the input's bytes.
//
// Errors are logged, shown on the landing page and may reach a central log
// store; the input can hold anything its writer put there, including a
// password or a token that a batch job's file or an API answer happened to
// quote. Libraries quote the offending token in their messages
// (expfmt's "expected float as value, got \"…\"", strconv's
// "parsing \"…\": invalid syntax", encoding/json's "invalid character 'x'"),
// so their errors are never passed on as text: Wrap keeps the kind of error
// and its position and drops the rest.
//
// Every collector and parser uses this package at the point where an error
// about outside input is made:
//
//	return inputerr.At(path, line, "expected a number")  // your own parser
//	return inputerr.Wrap(path, err)                      // a library's error
//
// Kinds passed to At and New are the exporter's own words; never format input
// into them. The cause given to Wrap stays reachable through errors.Is and
// errors.As, but is never printed.
package inputerr

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/procfs"
)

// Error is an error about bad input that holds no byte of it.
type Error struct {
	Source string // the file, socket or object as the exporter named it (not as read)
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Kind   string // what is wrong, in words that quote no input
	cause  error  // for errors.Is/As; never printed
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(", column ")
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if e.Kind != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Kind)
	}
	return b.String()
}

// Unwrap returns the cause, so that errors.Is(err, fs.ErrNotExist) still
// works on a wrapped error.
func (e *Error) Unwrap() error { return e.cause }

// New is an error about source of the given kind, at no known position.
func New(source, kind string) *Error { return &Error{Source: source, Kind: kind} }

// At is an error about source at line (1-based; 0 when unknown) of the given
// kind.
func At(source string, line int, kind string) *Error {
	return &Error{Source: source, Line: line, Kind: kind}
}

// Because is an error about source of the given kind, caused by err: the
// kind is printed, err only reachable through errors.Is and errors.As. For a
// library error this package does not know, whose kind the caller can tell.
func Because(source, kind string, err error) *Error {
	return &Error{Source: source, Kind: kind, cause: err}
}

// Wrap returns err as an error about source that keeps only its kind and
// position (see Describe). A nil err stays nil. An *Error passed in keeps its
// own position and gets source put in front of its own.
func Wrap(source string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Source: source, cause: err}
	switch c := err.(type) {
	case *Error:
		e.Source, e.Line, e.Column, e.Kind, e.cause = join(source, c.Source), c.Line, c.Column, c.Kind, c.cause
	case expfmt.ParseError:
		e.Line, e.Kind = c.Line, elideQuoted(c.Msg)
	default:
		e.Kind = Describe(err)
	}
	return e
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + ": " + b
}

// sentinels are errors whose text is a fixed string of a library, safe to
// show as it is.
var sentinels = []error{
	io.EOF, io.ErrUnexpectedEOF, io.ErrShortBuffer, io.ErrNoProgress,
	bufio.ErrTooLong, bufio.ErrNegativeAdvance, bufio.ErrBufferFull,
	context.Canceled, context.DeadlineExceeded, os.ErrDeadlineExceeded,
	fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrClosed, fs.ErrInvalid,
	net.ErrClosed, strconv.ErrSyntax, strconv.ErrRange,
	procfs.ErrFileParse, procfs.ErrFileRead, procfs.ErrMountPoint,
}

// Withheld stands for the text of an error this package does not know: it
// may quote the input, so it is not shown.
const Withheld = "error text withheld (it may quote the input)"

// Describe returns what err says that is safe to show: system error
// numbers, paths and addresses the exporter opened, the function and kind of
// a strconv error, the offset of a JSON syntax error and the field and type of
// a JSON type mismatch, the line and kind of an expfmt parse error. The text
// of a wrapper (fmt.Errorf) is dropped in favour of what it wraps; an error
// it does not know is replaced by Withheld.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range sentinels {
		if err == s { //nolint:errorlint // identity: a wrapper's text is unknown
			return s.Error()
		}
	}
	switch e := err.(type) {
	case *Error:
		return e.Error()
	case syscall.Errno:
		return e.Error()
	case *fs.PathError:
		return e.Op + " " + e.Path + ": " + Describe(e.Err)
	case *os.LinkError:
		return e.Op + " " + e.Old + " " + e.New + ": " + Describe(e.Err)
	case *os.SyscallError:
		return e.Syscall + ": " + Describe(e.Err)
	case *net.OpError:
		s := e.Op
		if e.Net != "" {
			s += " " + e.Net
		}
		if e.Addr != nil {
			s += " " + e.Addr.String()
		}
		return s + ": " + Describe(e.Err)
	case *url.Error:
		return e.Op + " " + e.URL + ": " + Describe(e.Err)
	case *strconv.NumError:
		return "strconv." + e.Func + ": " + Describe(e.Err)
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		kind, _, _ := strings.Cut(e.Value, " ") // "number 12" -> "number"
		where := ""
		if e.Field != "" {
			where = " of field " + e.Field
		}
		return fmt.Sprintf("JSON %s%s at byte %d is not of type %v", kind, where, e.Offset, e.Type)
	case *json.InvalidUnmarshalError:
		return e.Error()
	case expfmt.ParseError:
		return fmt.Sprintf("line %d: %s", e.Line, elideQuoted(e.Msg))
	case runtime.Error:
		return e.Error() // index out of range and the like: numbers only
	case interface{ Unwrap() []error }:
		var parts []string
		for _, c := range e.Unwrap() {
			if c != nil {
				parts = append(parts, Describe(c))
			}
		}
		sep := ": " // fmt.Errorf with several %w: one message
		if fmt.Sprintf("%T", err) == "*errors.joinError" {
			sep = "; " // errors.Join: separate errors
		}
		return strings.Join(parts, sep)
	case interface{ Unwrap() error }:
		if c := e.Unwrap(); c != nil {
			return Describe(c)
		}
	}
	return Withheld
}

// Panic turns a recovered panic value into an error that quotes no input: a
// runtime error (index out of range, nil dereference) keeps its text, which
// holds numbers only; any other value is reported by its type.
func Panic(p any) *Error {
	if re, ok := p.(runtime.Error); ok {
		return &Error{Kind: "panic: " + re.Error()}
	}
	return &Error{Kind: fmt.Sprintf("panic (a value of type %T)", p)}
}

// literals are quoted words of expfmt's own messages, kept as they are.
var literals = map[string]bool{`'='`: true, `'"'`: true, `'quantile'`: true, `'le'`: true, `"__name__"`: true}

// elideQuoted replaces every quoted token of a library's message ("…" as
// Go's %q writes it, or '…') with an ellipsis in the same quotes, so the
// message keeps its kind ("expected float as value, got \"…\"") and loses the
// token. An unterminated quote loses the rest of the message.
func elideQuoted(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c != '"' && c != '\'' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for ; j < len(msg) && msg[j] != c; j++ {
			if msg[j] == '\\' {
				j++
			}
		}
		if j >= len(msg) {
			b.WriteByte(c)
			b.WriteString("…")
			return b.String()
		}
		if q := msg[i : j+1]; literals[q] {
			b.WriteString(q)
		} else {
			b.WriteByte(c)
			b.WriteString("…")
			b.WriteByte(c)
		}
		i = j
	}
	return b.String()
}
