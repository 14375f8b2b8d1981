package btrfs

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

func FuzzParseKeyValues(f *testing.F) {
	for _, p := range []string{
		"testdata/sys/fs/btrfs/" + fixUUID + "/commit_stats",
		"testdata/sys/fs/btrfs/" + fixUUID + "/devinfo/1/error_stats",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint(len(b)/2))
	}
	f.Add([]byte("write_errs 1 2\n"), uint(2))
	f.Fuzz(func(t *testing.T, b []byte, at uint) {
		_, err := parseKeyValues(inputerrtest.Plant(b, at))
		inputerrtest.CheckErr(t, "parseKeyValues", err)
		kv, err := parseKeyValues(b)
		if err == nil && len(kv) == 0 {
			t.Fatal("no error and no values")
		}
	})
}

func FuzzParseUintFile(f *testing.F) {
	f.Add([]byte("107347968\n"), uint(0))
	f.Add([]byte(""), uint(1))
	f.Add([]byte("-1"), uint(2))
	f.Fuzz(func(t *testing.T, b []byte, at uint) {
		_, _ = parseUintFile(b)
		_, err := parseUintFile(inputerrtest.Plant(b, at))
		inputerrtest.CheckErr(t, "parseUintFile", err)
	})
}

func FuzzParseScrubStatus(f *testing.F) {
	b, err := os.ReadFile("testdata/root/var/lib/btrfs/scrub.status." + fixUUID)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, fixUUID, uint(1))
	f.Add(b[:len(b)/3], "", uint(2))
	f.Add([]byte("scrub status:1\nx:1|t_start:1|duration:2|finished:1|canceled:0\n"), "x", uint(3))
	f.Fuzz(func(t *testing.T, b []byte, uuid string, at uint) {
		_, err := parseScrubStatus(inputerrtest.Plant(b, at), uuid)
		inputerrtest.CheckErr(t, "parseScrubStatus", err)
		st, err := parseScrubStatus(b, uuid)
		if err == nil && st.Devices == 0 {
			t.Fatal("no error and no devices")
		}
	})
}

// FuzzRootTree feeds tree search buffers through the decoder and the
// summary the scrape path reads.
func FuzzRootTree(f *testing.F) {
	b, err := os.ReadFile("testdata/root-tree-search.bin")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		n := int(binary.LittleEndian.Uint32(b) % 10000)
		items, _ := parseSearchItems(b[4:], n)
		subs := map[uint64]*subvol{}
		if err := collectSubvols(items, subs); err != nil {
			return
		}
		lookup := func(tree, dir uint64) (string, error) {
			if dir%2 == 0 {
				return "d/", nil
			}
			return "", errors.New("no such directory")
		}
		_, _ = summarize(subs, lookup, quotaSelect{})
	})
}
