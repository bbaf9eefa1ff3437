package dialog

import "github.com/callcontrol/callcontrol/internal/sipdialog"

// The dialog vocabulary (and ParseID) lives in sipdialog, so that the
// session table names it without importing this transport; these are its
// names here.
type (
	ID     = sipdialog.ID
	Target = sipdialog.Target
	Ender  = sipdialog.Ender
)

// openSIPSDialogID is the OpenSIPS 3.1+ numeric dialog_id: each half in
// hexadecimal with the least significant digit first, joined by '.'.
func openSIPSDialogID(d ID) string {
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
