package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// state is what survives a restart: the cursor of the last entry counted
// and the counts up to and including it. Both are written together in one
// file (a temporary file renamed over the old one), so after a restart
// the counters go on from where the cursor points: an entry is never
// counted twice nor missed, even after a crash between two writes (the
// entries after the saved cursor are then read and counted again from the
// saved counts).
type state struct {
	Version int                           `json:"version"`
	Cursor  string                        `json:"cursor"`
	Read    float64                       `json:"read"`
	Entries map[string]map[string]float64 `json:"entries"` // unit -> priority name -> count
	Kernel  map[string]float64            `json:"kernel"`  // event -> count
}

const stateVersion = 1

// loadState reads the state file. A missing file is a first start (zero
// state, no error); a file that cannot be read or parsed is reported by
// kind, never by content, and also starts from zero.
func loadState(path string) (*state, error) {
	s := &state{Version: stateVersion}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("state file %s: %w", path, err)
	}
	var got state
	if err := json.Unmarshal(b, &got); err != nil {
		return s, fmt.Errorf("state file %s: not valid JSON (%d bytes); starting from the end of the journal", path, len(b))
	}
	if got.Version != stateVersion {
		return s, fmt.Errorf("state file %s: version %d, want %d; starting from the end of the journal", path, got.Version, stateVersion)
	}
	return &got, nil
}

// save writes s to path atomically and durably.
func (s *state) save(path string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".journal-state-*")
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}
