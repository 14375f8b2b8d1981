package inputerr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

const m = inputerrtest.Marker

// Each library error that quotes its input loses the quote and keeps its
// kind and position.
func TestWrapKeepsKindDropsInput(t *testing.T) {
	_, numErr := strconv.ParseUint(m, 10, 64)
	var v struct{ A int }
	jsonSyntax := json.Unmarshal([]byte(`{"A": `+m+`}`), &v)
	jsonType := json.Unmarshal([]byte(`{"A": "`+m+`"}`), &v)
	jsonNumber := json.Unmarshal([]byte(`{"A": 1e400}`), &v)
	_, expfmtErr := parseText(strings.NewReader("ok 1\nbad_metric " + m + "\n"))
	for _, c := range []struct {
		err  error
		want string
	}{
		{numErr, "f: strconv.ParseUint: invalid syntax"},
		{fmt.Errorf("couldn't parse %q (btime): %w", m, numErr), "f: strconv.ParseUint: invalid syntax"},
		{jsonSyntax, "f: invalid JSON at byte 7"},
		{jsonType, "f: JSON string of field A at byte 21 is not of type int"},
		{jsonNumber, "f: JSON number of field A at byte 11 is not of type int"},
		{expfmtErr, `f: line 2: expected float as value, got "…"`},
		{fmt.Errorf("text: %w", expfmtErr), `f: line 2: expected float as value, got "…"`},
		{errors.New("bad line " + m), "f: " + inputerr.Withheld},
		{errors.Join(numErr, fs.ErrNotExist), "f: strconv.ParseUint: invalid syntax; file does not exist"},
		{inputerr.At("inner", 3, "no value"), "f: inner: line 3: no value"},
	} {
		got := inputerr.Wrap("f", c.err)
		if got.Error() != c.want {
			t.Errorf("Wrap(%q) = %q, want %q", c.err, got, c.want)
		}
		inputerrtest.CheckErr(t, "wrapped error", got)
		if !errors.Is(got, c.err) && !strings.Contains(c.want, "inner") {
			t.Errorf("Wrap(%q) lost its cause", c.err)
		}
	}
}

// System errors keep the path the exporter opened and the errno text.
func TestWrapPathError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing")
	_, err := os.Open(p)
	got := inputerr.Wrap("reading", err)
	if want := "reading: open " + p + ": no such file or directory"; got.Error() != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(got, fs.ErrNotExist) {
		t.Error("errors.Is(ErrNotExist) lost")
	}
}

func TestErrorPosition(t *testing.T) {
	e := &inputerr.Error{Source: "/x.prom", Line: 4, Column: 9, Kind: "bad"}
	if e.Error() != "/x.prom: line 4, column 9: bad" {
		t.Error(e.Error())
	}
	if inputerr.Wrap("x", nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
}

// Every expfmt parse error, with the marker in each place one can quote,
// keeps its line and drops the marker.
func TestExpfmtMessages(t *testing.T) {
	for _, in := range []string{
		m + "{",
		"a " + m,
		"a 1 " + m,
		"a 1 2 " + m,
		"a{" + m + "\n",
		"a{b" + m + "=\"x\n",
		"a{b=" + m + "}",
		"a{b=\"" + m,
		"a{quantile=\"" + m + "\"} 1",
		"# TYPE a " + m,
		"# TYPE a summary\na{quantile=\"" + m + "\"} 1",
		"# TYPE a histogram\na_bucket{le=\"" + m + "\"} 1",
		"a{b=\"\\" + m + "\"} 1",
		"# HELP a x\n# HELP a " + m,
		"a{b=\"1\",b=\"" + m + "\"} 1",
		"a{__name__=\"" + m + "\"} 1",
	} {
		_, err := parseText(bytes.NewReader([]byte(in)))
		if err == nil {
			continue
		}
		got := inputerr.Wrap("f", err)
		inputerrtest.CheckErr(t, fmt.Sprintf("error for %q", in), got)
		if !strings.HasPrefix(got.Error(), "f: line ") {
			t.Errorf("%q: no line in %q", in, got)
		}
	}
}

func TestPanic(t *testing.T) {
	var s []int
	func() {
		defer func() {
			err := inputerr.Panic(recover())
			if !strings.Contains(err.Error(), "index out of range") {
				t.Error(err)
			}
		}()
		_ = s[3]
	}()
	if err := inputerr.Panic("bad " + m); strings.Contains(err.Error(), m) {
		t.Error(err)
	}
}

func FuzzDescribe(f *testing.F) {
	f.Add([]byte("a 1\n"), 0, uint(2))
	f.Add([]byte(`{"A": 1}`), 1, uint(5))
	f.Add([]byte("12"), 2, uint(1))
	f.Fuzz(func(t *testing.T, b []byte, kind int, at uint) {
		b = inputerrtest.Plant(b, at)
		var err error
		switch kind % 3 {
		case 0:
			_, err = parseText(bytes.NewReader(b))
		case 1:
			var v struct {
				A int
				B []string
			}
			err = json.Unmarshal(b, &v)
		case 2:
			_, err = strconv.ParseFloat(string(b), 64)
		}
		inputerrtest.CheckErr(t, "Wrap", inputerr.Wrap("f", err))
	})
}

func parseText(r interface{ Read([]byte) (int, error) }) (map[string]any, error) {
	tp := expfmt.NewTextParser(model.UTF8Validation)
	_, err := tp.TextToMetricFamilies(r)
	return nil, err
}
