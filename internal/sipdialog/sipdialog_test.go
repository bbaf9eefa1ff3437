package sipdialog

import (
	"errors"
	"testing"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{in: "1079:6296", want: ID{1079, 6296}},
		{in: "3413:2147483647", want: ID{3413, 2147483647}},
		{in: "0:0", want: ID{0, 0}},
		{in: "4294967295:4294967295", want: ID{4294967295, 4294967295}},
		{in: " 1079:6296\r\n", want: ID{1079, 6296}},
		{in: "4634269718683", want: ID{1079, 6299}}, // 1079<<32 | 6299
		{in: "6296", want: ID{0, 6296}},
		{in: "18446744073709551615", want: ID{4294967295, 4294967295}},
		{in: "0", want: ID{}},
		{in: "", wantErr: true},
		{in: ":", wantErr: true},
		{in: "1079:", wantErr: true},
		{in: ":6296", wantErr: true},
		{in: "1079:6296:1", wantErr: true},
		{in: "4294967296:1", wantErr: true},
		{in: "1:4294967296", wantErr: true},
		{in: "18446744073709551616", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+5", wantErr: true},
		{in: "0x10", wantErr: true},
		{in: "1079.6296", wantErr: true},
		{in: "10 79:6296", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "None", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseID(%q) = %v, want error", tt.in, got)
				}
				if !errors.Is(err, ErrBadID) {
					t.Fatalf("ParseID(%q) error %v does not wrap ErrBadID", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseID(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseID(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIDForms(t *testing.T) {
	tests := []struct {
		id  ID
		str string
		u64 uint64
	}{
		{ID{1079, 6296}, "1079:6296", 1079<<32 | 6296},
		{ID{0, 0}, "0:0", 0},
		{ID{0x1a2b, 0xf}, "6699:15", 0x1a2b<<32 | 0xf},
		{ID{0xffffffff, 0x10}, "4294967295:16", 0xffffffff<<32 | 0x10},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.id.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := tt.id.Uint64(); got != tt.u64 {
				t.Errorf("Uint64() = %d, want %d", got, tt.u64)
			}
			// Both textual forms parse back to the same ID.
			for _, s := range []string{tt.str, uitoa(tt.u64)} {
				back, err := ParseID(s)
				if err != nil || back != tt.id {
					t.Errorf("ParseID(%q) = %+v, %v; want %+v", s, back, err, tt.id)
				}
			}
		})
	}
}

func uitoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1079:6296", "3413:2147483647", "4637154304128", "", ":", "1:2:3", "-1", "18446744073709551616", "0x1:2", " 5:6 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		// A parsed id round-trips through both of its forms.
		for _, form := range []string{id.String(), uitoa(id.Uint64())} {
			back, err := ParseID(form)
			if err != nil || back != id {
				t.Fatalf("ParseID(%q) = %+v; round trip via %q gave %+v, %v", s, id, form, back, err)
			}
		}
	})
}
