package btrfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On-disk and ioctl constants from linux/btrfs.h and linux/btrfs_tree.h.
const (
	rootTreeObjectID   = 1
	fsTreeObjectID     = 5
	firstFreeObjectID  = 256
	lastFreeObjectID   = ^uint64(0) - 255 // -256ULL
	rootItemKey        = 132
	rootBackrefKey     = 144
	rootSubvolRdonly   = 1 << 0
	searchKeySize      = 104
	searchHeaderSize   = 32
	searchBufSize      = 256 << 10
	inoLookupPathMax   = 4080
	iocTreeSearchV2    = 0xC0709411 // _IOWR(0x94, 17, struct btrfs_ioctl_search_args_v2) (112 bytes)
	iocInoLookup       = 0xD0009412 // _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args) (4096 bytes)
	rootItemUUIDOffset = 247        // offsetof(struct btrfs_root_item, uuid)
	rootItemOtimeEnd   = 351        // end of otime: uuid, parent_uuid, received_uuid, 4 transids, ctime, otime
	rootItemGenV2      = 239        // offsetof(struct btrfs_root_item, generation_v2)
	rootItemFlags      = 208
	rootItemRefs       = 216
	rootItemGeneration = 160
)

// subvol is one subvolume (or snapshot) from the root tree.
type subvol struct {
	ID, ParentID, DirID uint64 // ParentID: the subvolume it sits in (0: no backref)
	Name                string // name in its parent directory
	Generation          uint64
	UUID, ParentUUID    [16]byte
	Otime               int64 // creation time, Unix seconds
	OtimeNsec           uint32
	ReadOnly            bool
	Refs                uint32
	HasUUID             bool
}

// searchKey is struct btrfs_ioctl_search_key.
type searchKey struct {
	TreeID, MinObjectID, MaxObjectID, MinOffset, MaxOffset, MinTransID, MaxTransID uint64
	MinType, MaxType, NrItems, _                                                   uint32
	_                                                                              [4]uint64
}

// searchArgsV2 is struct btrfs_ioctl_search_args_v2 followed by its buffer.
type searchArgsV2 struct {
	Key     searchKey
	BufSize uint64
	Buf     [searchBufSize]byte
}

// item is one search result.
type item struct {
	ObjectID, Offset uint64
	Type             uint32
	Data             []byte
}

// parseSearchItems decodes n items of a TREE_SEARCH(_V2) result buffer
// (struct btrfs_ioctl_search_header followed by the item). It copies nothing:
// Data points into buf.
func parseSearchItems(buf []byte, n int) ([]item, error) {
	items := make([]item, 0, n)
	off := 0
	for i := 0; i < n; i++ {
		if off+searchHeaderSize > len(buf) {
			return items, fmt.Errorf("tree search: item %d header past the buffer", i)
		}
		h := buf[off : off+searchHeaderSize]
		it := item{
			ObjectID: binary.LittleEndian.Uint64(h[8:]),
			Offset:   binary.LittleEndian.Uint64(h[16:]),
			Type:     binary.LittleEndian.Uint32(h[24:]),
		}
		l := int(binary.LittleEndian.Uint32(h[28:]))
		off += searchHeaderSize
		if l < 0 || off+l > len(buf) {
			return items, fmt.Errorf("tree search: item %d data (%d bytes) past the buffer", i, l)
		}
		it.Data = buf[off : off+l]
		off += l
		items = append(items, it)
	}
	return items, nil
}

// parseRootItem fills s from a struct btrfs_root_item. Items written by
// kernels before 3.x lack UUIDs and times; they have HasUUID false.
func parseRootItem(s *subvol, d []byte) error {
	if len(d) < rootItemRefs+4 {
		return fmt.Errorf("root item of %d: %d bytes, too short", s.ID, len(d))
	}
	s.Generation = binary.LittleEndian.Uint64(d[rootItemGeneration:])
	s.ReadOnly = binary.LittleEndian.Uint64(d[rootItemFlags:])&rootSubvolRdonly != 0
	s.Refs = binary.LittleEndian.Uint32(d[rootItemRefs:])
	if len(d) < rootItemOtimeEnd {
		return nil
	}
	// generation_v2 equal to generation marks the extended fields valid.
	if binary.LittleEndian.Uint64(d[rootItemGenV2:]) != s.Generation {
		return nil
	}
	s.HasUUID = true
	copy(s.UUID[:], d[rootItemUUIDOffset:])
	copy(s.ParentUUID[:], d[rootItemUUIDOffset+16:])
	ot := rootItemOtimeEnd - 12
	s.Otime = int64(binary.LittleEndian.Uint64(d[ot:]))
	s.OtimeNsec = binary.LittleEndian.Uint32(d[ot+8:])
	return nil
}

// parseRootRef decodes struct btrfs_root_ref: dirid, sequence, name_len, name.
func parseRootRef(d []byte) (dirID uint64, name string, err error) {
	if len(d) < 18 {
		return 0, "", fmt.Errorf("root backref: %d bytes, too short", len(d))
	}
	dirID = binary.LittleEndian.Uint64(d)
	nl := int(binary.LittleEndian.Uint16(d[16:]))
	if 18+nl > len(d) {
		return 0, "", fmt.Errorf("root backref: name of %d bytes past the item (%d)", nl, len(d))
	}
	return dirID, string(d[18 : 18+nl]), nil
}

// collectSubvols turns root tree items (ROOT_ITEM and ROOT_BACKREF keys, in
// key order) into subvolumes. Subvolumes without a backref (deleted, not yet
// cleaned) are left out, as `btrfs subvolume list` does; the top level (5)
// is kept.
func collectSubvols(items []item, into map[uint64]*subvol) error {
	for _, it := range items {
		if it.ObjectID != fsTreeObjectID && (it.ObjectID < firstFreeObjectID || it.ObjectID > lastFreeObjectID) {
			continue
		}
		s := into[it.ObjectID]
		if s == nil {
			s = &subvol{ID: it.ObjectID}
			into[it.ObjectID] = s
		}
		switch it.Type {
		case rootItemKey:
			if err := parseRootItem(s, it.Data); err != nil {
				return err
			}
		case rootBackrefKey:
			dir, name, err := parseRootRef(it.Data)
			if err != nil {
				return fmt.Errorf("subvolume %d: %w", it.ObjectID, err)
			}
			s.ParentID, s.DirID, s.Name = it.Offset, dir, name
		}
	}
	return nil
}

// treeSearcher runs tree searches on an open file of the filesystem.
type treeSearcher struct {
	fd   int
	args *searchArgsV2
}

// subvolumes returns every subvolume of the root tree, by id, from its
// ROOT_ITEM and ROOT_BACKREF, a few hundred items per ioctl. It needs
// CAP_SYS_ADMIN.
func (t *treeSearcher) subvolumes() (map[uint64]*subvol, error) {
	if t.args == nil {
		t.args = new(searchArgsV2)
	}
	a := t.args
	a.Key = searchKey{
		TreeID:      rootTreeObjectID,
		MinObjectID: fsTreeObjectID, MaxObjectID: lastFreeObjectID,
		MinType: rootItemKey, MaxType: rootBackrefKey,
		MaxOffset: ^uint64(0), MaxTransID: ^uint64(0),
	}
	out := map[uint64]*subvol{}
	for {
		a.Key.NrItems = 4096
		a.BufSize = searchBufSize
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(t.fd), iocTreeSearchV2, uintptr(unsafe.Pointer(a))); errno != 0 {
			return nil, fmt.Errorf("BTRFS_IOC_TREE_SEARCH_V2: %w", errno)
		}
		n := int(a.Key.NrItems)
		if n == 0 {
			break
		}
		items, err := parseSearchItems(a.Buf[:], n)
		if err != nil {
			return nil, err
		}
		var keep []item
		for _, it := range items {
			if it.Type == rootItemKey || it.Type == rootBackrefKey {
				keep = append(keep, it)
			}
		}
		if err := collectSubvols(keep, out); err != nil {
			return nil, err
		}
		// Continue after the last key returned.
		last := items[len(items)-1]
		k := &a.Key
		k.MinObjectID, k.MinType, k.MinOffset = last.ObjectID, last.Type, last.Offset
		switch {
		case k.MinOffset < ^uint64(0):
			k.MinOffset++
		case k.MinType < rootBackrefKey:
			k.MinType, k.MinOffset = k.MinType+1, 0
		default:
			if k.MinObjectID == lastFreeObjectID {
				return out, nil
			}
			k.MinObjectID, k.MinType, k.MinOffset = k.MinObjectID+1, rootItemKey, 0
		}
		if k.MinType > rootBackrefKey {
			k.MinObjectID, k.MinType, k.MinOffset = k.MinObjectID+1, rootItemKey, 0
		}
	}
	return out, nil
}

// inoLookupArgs is struct btrfs_ioctl_ino_lookup_args.
type inoLookupArgs struct {
	TreeID, ObjectID uint64
	Name             [inoLookupPathMax]byte
}

// dirPath returns the path of directory dirID inside subvolume treeID, with
// a trailing slash ("" for the subvolume's root directory).
func (t *treeSearcher) dirPath(treeID, dirID uint64) (string, error) {
	if dirID == firstFreeObjectID {
		return "", nil
	}
	a := inoLookupArgs{TreeID: treeID, ObjectID: dirID}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(t.fd), iocInoLookup, uintptr(unsafe.Pointer(&a))); errno != 0 {
		return "", fmt.Errorf("BTRFS_IOC_INO_LOOKUP: %w", errno)
	}
	if i := bytes.IndexByte(a.Name[:], 0); i >= 0 {
		return string(a.Name[:i]), nil
	}
	return string(a.Name[:]), nil
}

// pather resolves full subvolume paths (relative to the top level, as
// `btrfs subvolume list` prints them), memoised.
type pather struct {
	subs   map[uint64]*subvol
	lookup func(treeID, dirID uint64) (string, error)
	memo   map[uint64]string
}

func (p *pather) path(id uint64) (string, error) {
	return p.pathDepth(id, 0)
}

func (p *pather) pathDepth(id uint64, depth int) (string, error) {
	if id == fsTreeObjectID {
		return "<FS_TREE>", nil
	}
	if s, ok := p.memo[id]; ok {
		return s, nil
	}
	s := p.subs[id]
	if s == nil || s.ParentID == 0 {
		return "", fmt.Errorf("subvolume %d: no backref", id)
	}
	if depth > 256 {
		return "", errors.New("subvolume path: loop or too deep")
	}
	dir := "" // the subvolume sits in its parent's root directory
	if s.DirID != firstFreeObjectID {
		var err error
		if dir, err = p.lookup(s.ParentID, s.DirID); err != nil {
			return "", err
		}
	}
	full := dir + s.Name
	if s.ParentID != fsTreeObjectID {
		parent, err := p.pathDepth(s.ParentID, depth+1)
		if err != nil {
			return "", err
		}
		full = parent + "/" + full
	}
	if p.memo == nil {
		p.memo = map[uint64]string{}
	}
	p.memo[id] = full
	return full, nil
}

// sourceStats is, for one source subvolume, its snapshots.
type sourceStats struct {
	ID        uint64
	Path      string
	Snapshots int
	Newest    float64 // Unix seconds, 0 when none
}

// summary is what one walk of the subvolume tree leaves for the scrape path:
// its size depends on the number of source subvolumes, not snapshots.
type summary struct {
	Subvolumes int // as `btrfs subvolume list` counts them (top level excluded)
	Sources    []sourceStats
	Paths      map[uint64]string // id -> path of subvolumes named in quotas
}

// quotaSelect says which subvolumes' quota figures are wanted: those in the
// top level's root directory (read-only snapshots left out), and those whose
// path matches Include (nil: none more).
type quotaSelect struct {
	Include *regexp.Regexp
}

// summarize groups snapshots by the subvolume their parent UUID names. A
// source is any subvolume that is not a snapshot itself, plus any snapshot
// that has snapshots of its own; snapshots whose source is gone are counted
// only in Subvolumes. q picks the subvolumes whose paths summary.Paths
// keeps for the quota figures.
func summarize(subs map[uint64]*subvol, lookup func(treeID, dirID uint64) (string, error), q quotaSelect) (*summary, error) {
	byUUID := map[[16]byte]*subvol{}
	for _, s := range subs {
		if s.HasUUID {
			byUUID[s.UUID] = s
		}
	}
	var zero [16]byte
	type agg struct {
		n      int
		newest float64
	}
	counts := map[uint64]*agg{}
	sum := &summary{Paths: map[uint64]string{}}
	for _, s := range subs {
		if s.ID == fsTreeObjectID || s.ParentID == 0 {
			continue
		}
		sum.Subvolumes++
		if !s.HasUUID || s.ParentUUID == zero {
			if counts[s.ID] == nil {
				counts[s.ID] = &agg{}
			}
			continue
		}
		src := byUUID[s.ParentUUID]
		if src == nil || (src.ID != fsTreeObjectID && src.ParentID == 0) {
			continue // source deleted
		}
		a := counts[src.ID]
		if a == nil {
			a = &agg{}
			counts[src.ID] = a
		}
		a.n++
		t := float64(s.Otime) + float64(s.OtimeNsec)/1e9
		if t > a.newest {
			a.newest = t
		}
	}
	p := &pather{subs: subs, lookup: lookup}
	for id, a := range counts {
		path, err := p.path(id)
		if err != nil {
			return nil, err
		}
		sum.Sources = append(sum.Sources, sourceStats{ID: id, Path: path, Snapshots: a.n, Newest: a.newest})
	}
	sort.Slice(sum.Sources, func(i, j int) bool { return sum.Sources[i].Path < sum.Sources[j].Path })
	for id, s := range subs {
		if id == fsTreeObjectID || s.ParentID == 0 {
			continue
		}
		// By default: subvolumes in the top level's root directory that
		// are not read-only snapshots, so that the scrape path does not
		// grow with the number of snapshots.
		top := s.ParentID == fsTreeObjectID && s.DirID == firstFreeObjectID &&
			!(s.ReadOnly && s.HasUUID && s.ParentUUID != zero)
		if !top && q.Include == nil {
			continue
		}
		path, err := p.path(id)
		if err != nil {
			return nil, err
		}
		if top || q.Include.MatchString(path) {
			sum.Paths[id] = path
		}
	}
	return sum, nil
}

// uuidString formats a UUID as 8-4-4-4-12 hex.
func uuidString(u [16]byte) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b.WriteByte('-')
		}
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
