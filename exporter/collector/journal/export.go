package journal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Entry holds the fields of one journal entry that the collector reads.
// Its byte slices are reused by the next call of Reader.Next.
type Entry struct {
	Cursor    []byte
	Realtime  int64 // __REALTIME_TIMESTAMP, microseconds since the epoch; 0 when absent
	Priority  int   // PRIORITY 0..7; -1 when absent or not a number
	Unit      []byte
	Transport []byte
	Message   []byte // at most maxMessage bytes: the classifier needs only the start
}

func (e *Entry) reset() {
	e.Cursor, e.Unit, e.Transport, e.Message = e.Cursor[:0], e.Unit[:0], e.Transport[:0], e.Message[:0]
	e.Realtime, e.Priority = 0, -1
}

const (
	// maxMessage is how much of MESSAGE is kept. Kernel lines are far
	// shorter; a longer message is cut, never buffered whole.
	maxMessage = 2048
	// maxShort bounds the other kept fields (a cursor is about 130 bytes).
	maxShort = 512
	// maxBinary refuses a binary field that claims more than the journal
	// allows for one field (journald's DATA_SIZE_MAX is 768 MiB; anything
	// near it is a broken stream). It is skipped, not read into memory.
	maxBinary = 1 << 30
)

// ErrFormat is the kind of every malformed-stream error. Its text never
// holds bytes of the stream: only the line number and what was wrong.
var ErrFormat = errors.New("malformed journal export stream")

// Reader reads journal export format
// (https://systemd.io/JOURNAL_EXPORT_FORMATS/) as `journalctl
// --output=export` writes it, with memory bounded by its buffer whatever
// the size of a field: kept fields are cut to a fixed length, the rest
// skipped as they stream by.
type Reader struct {
	r    *bufio.Reader
	line int
}

// NewReader reads from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

func formatErr(line int, what string) error {
	return fmt.Errorf("%w: line %d: %s", ErrFormat, line, what)
}

// Next reads the next entry into e. It returns io.EOF at the end of the
// stream between entries, io.ErrUnexpectedEOF inside one.
func (r *Reader) Next(e *Entry) error {
	e.reset()
	fields := 0
	for {
		name, value, full, err := r.readLine()
		if err != nil {
			if err == io.EOF && fields > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if len(name) == 0 && value == nil {
			if fields == 0 {
				continue // tolerate blank lines between entries
			}
			return nil
		}
		fields++
		if value == nil {
			// A binary field: "NAME\n", little-endian 64-bit size, data, "\n".
			if err := r.readBinary(e, name); err != nil {
				return err
			}
			continue
		}
		keep(e, name, value)
		if !full {
			if err := r.skipLine(); err != nil {
				return err
			}
		}
	}
}

// readLine reads one text line. For "NAME=value" it returns both (value
// may be cut: full is false then and the rest of the line is still
// unread); for "NAME" alone (a binary field follows) value is nil; for an
// empty line both are empty and value nil.
func (r *Reader) readLine() (name, value []byte, full bool, err error) {
	r.line++
	b, err := r.r.ReadSlice('\n')
	full = err == nil
	if err == bufio.ErrBufferFull {
		err = nil
	}
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			return nil, nil, false, io.ErrUnexpectedEOF
		}
		return nil, nil, false, err
	}
	if full {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil, nil, true, nil
	}
	i := bytes.IndexByte(b, '=')
	if i < 0 {
		if !full {
			return nil, nil, false, formatErr(r.line, "field name longer than 64 KiB")
		}
		return b, nil, true, nil
	}
	if i == 0 {
		return nil, nil, false, formatErr(r.line, "field without a name")
	}
	return b[:i], b[i+1:], full, nil
}

func (r *Reader) skipLine() error {
	for {
		_, err := r.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
}

func (r *Reader) readBinary(e *Entry, nameRef []byte) error {
	// nameRef points into the read buffer, which the reads below reuse.
	var nameBuf [32]byte
	name := append(nameBuf[:0], nameRef[:min(len(nameRef), len(nameBuf))]...)
	var size [8]byte
	if _, err := io.ReadFull(r.r, size[:]); err != nil {
		return io.ErrUnexpectedEOF
	}
	n := binary.LittleEndian.Uint64(size[:])
	if n > maxBinary {
		return formatErr(r.line, fmt.Sprintf("binary field of %d bytes", n))
	}
	limit := 0
	switch string(name) {
	case "MESSAGE":
		limit = maxMessage
	case "_SYSTEMD_UNIT", "_TRANSPORT", "PRIORITY", "__CURSOR", "__REALTIME_TIMESTAMP":
		limit = maxShort
	}
	limit = min(limit, int(n))
	buf := make([]byte, limit) // rare: binary fields hold non-UTF-8 or newlines
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return io.ErrUnexpectedEOF
	}
	if _, err := r.r.Discard(int(n) - limit); err != nil {
		return io.ErrUnexpectedEOF
	}
	if c, err := r.r.ReadByte(); err != nil {
		return io.ErrUnexpectedEOF
	} else if c != '\n' {
		return formatErr(r.line, "binary field not followed by a newline")
	}
	keep(e, name, buf)
	return nil
}

func keep(e *Entry, name, value []byte) {
	switch string(name) {
	case "MESSAGE":
		e.Message = append(e.Message[:0], value[:min(len(value), maxMessage)]...)
	case "__CURSOR":
		e.Cursor = append(e.Cursor[:0], value[:min(len(value), maxShort)]...)
	case "_SYSTEMD_UNIT":
		e.Unit = append(e.Unit[:0], value[:min(len(value), maxShort)]...)
	case "_TRANSPORT":
		e.Transport = append(e.Transport[:0], value[:min(len(value), maxShort)]...)
	case "PRIORITY":
		if p, err := strconv.Atoi(string(value)); err == nil && p >= 0 && p <= 7 {
			e.Priority = p
		}
	case "__REALTIME_TIMESTAMP":
		if t, err := strconv.ParseInt(string(value), 10, 64); err == nil {
			e.Realtime = t
		}
	}
}
