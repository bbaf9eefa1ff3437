package dialog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ID identifies a proxy dialog by its hash table entry and id.
type ID struct{ Entry, ID uint32 }

// ErrBadID is wrapped by every ParseID error.
var ErrBadID = errors.New("dialog: bad dialog id")

// ParseID accepts the `dialogid` of a call_control `start`: "h_entry:h_id"
// in decimal (Kamailio, OpenSIPS before 3.0) or one decimal 64-bit number
// (h_entry<<32)|h_id (OpenSIPS 3.x).
func ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	if e, i, ok := strings.Cut(s, ":"); ok {
		entry, err1 := parseDecimal(e, 32)
		id, err2 := parseDecimal(i, 32)
		if err1 != nil || err2 != nil {
			return ID{}, fmt.Errorf("%w: %q", ErrBadID, s)
		}
		return ID{Entry: uint32(entry), ID: uint32(id)}, nil
	}
	v, err := parseDecimal(s, 64)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	return ID{Entry: uint32(v >> 32), ID: uint32(v)}, nil
}

// parseDecimal is strict: digits only (no sign, no "0x", no spaces inside),
// so a garbled id is refused rather than misread.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, ErrBadID
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrBadID
		}
	}
	return strconv.ParseUint(s, 10, bits)
}

// String returns the "entry:id" form.
func (d ID) String() string {
	return strconv.FormatUint(uint64(d.Entry), 10) + ":" + strconv.FormatUint(uint64(d.ID), 10)
}

// Uint64 returns the OpenSIPS 3.x form (h_entry<<32)|h_id.
func (d ID) Uint64() uint64 { return uint64(d.Entry)<<32 | uint64(d.ID) }

// openSIPSDialogID is the OpenSIPS 3.1+ numeric dialog_id: each half in
// hexadecimal with the least significant digit first, joined by '.'.
func (d ID) openSIPSDialogID() string {
	return reverseHex(d.Entry) + "." + reverseHex(d.ID)
}

func reverseHex(v uint32) string {
	if v == 0 {
		return "0"
	}
	const digits = "0123456789abcdef"
	var b [8]byte
	n := 0
	for v != 0 {
		b[n] = digits[v&0xf]
		v >>= 4
		n++
	}
	return string(b[:n])
}
