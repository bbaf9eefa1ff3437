package dialog

import "testing"

func TestOpenSIPSDialogID(t *testing.T) {
	for _, tt := range []struct {
		id   ID
		want string
	}{
		{ID{Entry: 1079, ID: 6296}, "734.8981"},
		{ID{Entry: 0, ID: 0}, "0.0"},
		{ID{Entry: 0x1a2b, ID: 0xf}, "b2a1.f"},
		{ID{Entry: 0xffffffff, ID: 0x10}, "ffffffff.01"},
	} {
		if got := openSIPSDialogID(tt.id); got != tt.want {
			t.Errorf("openSIPSDialogID(%v) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
