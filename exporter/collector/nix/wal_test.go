package nix

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// While Nix holds its database open in WAL mode, commits sit in the -wal
// file until a checkpoint: the reader sees them (it is a WAL reader then,
// not immutable), and its read does not keep a writer from committing.
func TestDatabaseInWALMode(t *testing.T) {
	root := t.TempDir()
	nixOut(t, root, "nix-store", "--add", "nix_test.go")
	db := filepath.Join(root, "nix/var/nix/db/db.sqlite")
	before, _, _, _, err := queryDB(db, "")
	if err != nil || before <= 0 {
		t.Fatalf("size %v, %v", before, err)
	}
	w, err := sql.Open("sqlite", "file:"+db+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	insert := func(path string, size int) {
		t.Helper()
		if _, err := w.Exec(`INSERT INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?, 'sha256:00', 1, ?)`, path, size); err != nil {
			t.Fatal(err)
		}
	}
	insert("/nix/store/00000000000000000000000000000000-wal", 4096)
	if fi, err := os.Stat(db + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("no WAL file: %v", err)
	}
	after, _, _, _, err := queryDB(db, "")
	if err != nil || after != before+4096 {
		t.Fatalf("size in WAL mode %v (%v), want %v", after, err, before+4096)
	}
	insert("/nix/store/11111111111111111111111111111111-wal", 1)
}
