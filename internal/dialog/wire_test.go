package dialog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEncodeRequestGolden(t *testing.T) {
	tests := []struct {
		name   string
		flavor Flavor
		key    OpenSIPSKey
		seq    uint64
		target Target
		want   string
	}{
		{
			name: "kamailio", flavor: Kamailio, seq: 1,
			target: Target{CallID: "6432622xvv@1", Dialog: ID{Entry: 1079, ID: 6296}},
			want:   `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[1079,6296],"id":1}`,
		},
		{
			name: "kamailio max", flavor: Kamailio, seq: 18446744073709551615,
			target: Target{CallID: "x", Dialog: ID{Entry: 4294967295, ID: 0}},
			want:   `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[4294967295,0],"id":18446744073709551615}`,
		},
		{
			name: "opensips by call-id", flavor: OpenSIPS, seq: 7,
			target: Target{CallID: "6432622xvv@1", Dialog: ID{Entry: 1079, ID: 6296}},
			want:   `{"jsonrpc":"2.0","id":"7","method":"dlg_end_dlg","params":{"dialog_id":"6432622xvv@1"}}`,
		},
		{
			name: "opensips call-id escaping", flavor: OpenSIPS, seq: 8,
			target: Target{CallID: `a"b\c<d>&`},
			want:   `{"jsonrpc":"2.0","id":"8","method":"dlg_end_dlg","params":{"dialog_id":"a\"b\\c<d>&"}}`,
		},
		{
			name: "opensips by dialog id", flavor: OpenSIPS, key: ByHexID, seq: 9,
			target: Target{CallID: "6432622xvv@1", Dialog: ID{Entry: 1079, ID: 6296}},
			want:   `{"jsonrpc":"2.0","id":"9","method":"dlg_end_dlg","params":{"dialog_id":"734.8981"}}`,
		},
		{
			name: "opensips 3.0 decimal id", flavor: OpenSIPS, key: ByDecimalID, seq: 11,
			target: Target{CallID: "c", Dialog: ID{Entry: 3413, ID: 2147483647}},
			want:   `{"jsonrpc":"2.0","id":"11","method":"dlg_end_dlg","params":{"dialog_id":"14660870864895"}}`,
		},
		{
			name: "opensips by dialog id zero", flavor: OpenSIPS, key: ByHexID, seq: 10,
			target: Target{CallID: "c", Dialog: ID{Entry: 0, ID: 0xabc}},
			want:   `{"jsonrpc":"2.0","id":"10","method":"dlg_end_dlg","params":{"dialog_id":"0.cba"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeRequest(tt.flavor, tt.key, tt.seq, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("not valid JSON: %s", got)
			}
		})
	}
}

func TestEncodeRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		flavor Flavor
		target Target
	}{
		{"unknown flavor", Flavor(0), Target{CallID: "a"}},
		{"empty call-id", OpenSIPS, Target{}},
		{"too big", OpenSIPS, Target{CallID: strings.Repeat("x", maxDatagram)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := encodeRequest(tt.flavor, ByCallID, 1, tt.target); err == nil {
				t.Fatalf("want error, got %q", b)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    reply
		wantErr error // nil: any error accepted when noErr is false
		noErr   bool
	}{
		{name: "kamailio ok", in: `{"jsonrpc":"2.0","result":{},"id":1}`, noErr: true, want: reply{seq: 1, kind: replyOK}},
		{name: "kamailio gone", in: `{"jsonrpc":"2.0","error":{"code":404,"message":"Dialog not found"},"id":12}`, noErr: true,
			want: reply{seq: 12, kind: replyGone, code: 404, message: "Dialog not found"}},
		{name: "kamailio bad params", in: `{"jsonrpc":"2.0","error":{"code":500,"message":"Invalid parameters"},"id":3}`, noErr: true,
			want: reply{seq: 3, kind: replyError, code: 500, message: "Invalid parameters"}},
		{name: "foreign id", in: `{"jsonrpc":"2.0","id":"1a","result":"OK"}`},
		{name: "opensips ok string id", in: "{\"jsonrpc\":\"2.0\",\"id\":\"42\",\"result\":\"OK\"}\n", noErr: true, want: reply{seq: 42, kind: replyOK}},
		{name: "opensips gone", in: `{"jsonrpc":"2.0","id":"5","error":{"code":404,"message":"Dialog not found"}}`, noErr: true,
			want: reply{seq: 5, kind: replyGone, code: 404, message: "Dialog not found"}},
		// Only code 404 says the dialog is gone: "Method not found"
		// (no dialog module) is an error, and the request is retried.
		{name: "not found, not 404", in: `{"jsonrpc":"2.0","id":"6","error":{"code":-32601,"message":"Method not found"}}`, noErr: true,
			want: reply{seq: 6, kind: replyError, code: -32601, message: "Method not found"}},
		{name: "plain text", in: "500 Internal error\n", wantErr: errNotJSON},
		{name: "plain text 400", in: "400 Parse_error", wantErr: errNotJSON},
		{name: "empty", in: "", wantErr: errNotJSON},
		{name: "broken json", in: `{"id":1,`, wantErr: errNotJSON},
		{name: "no id", in: `{"jsonrpc":"2.0","result":{}}`},
		{name: "null id", in: `{"jsonrpc":"2.0","result":{},"id":null}`},
		{name: "negative id", in: `{"jsonrpc":"2.0","result":{},"id":-1}`},
		{name: "no result", in: `{"jsonrpc":"2.0","id":1}`},
		{name: "null result", in: `{"jsonrpc":"2.0","id":1,"result":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReply([]byte(tt.in))
			if tt.noErr {
				if err != nil {
					t.Fatalf("parseReply: %v", err)
				}
				if got != tt.want {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error, got %+v", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseFlavor(t *testing.T) {
	tests := []struct {
		in   string
		want Flavor
		ok   bool
	}{
		{"kamailio", Kamailio, true},
		{" OpenSIPS ", OpenSIPS, true},
		{"ser", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseFlavor(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFlavor(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != strings.ToLower(strings.TrimSpace(tt.in)) {
			t.Errorf("String() = %q", got.String())
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","result":{},"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":404,"message":"Dialog not found"},"id":1}`,
		`{"jsonrpc":"2.0","id":"1a2b","result":"OK"}`,
		`{"jsonrpc":"2.0","id":"3","error":{"code":1.5e3,"message":"x"}}`,
		"500 Internal error", "", "{", `{"id":"18446744073709551616","result":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseReply(b)
		if err != nil {
			return
		}
		if r.kind < replyOK || r.kind > replyError {
			t.Fatalf("parseReply(%q) gave kind %d", b, r.kind)
		}
	})
}

func BenchmarkEncodeRequest(b *testing.B) {
	t := Target{CallID: "6432622xvv@1", Dialog: ID{Entry: 1079, ID: 6296}}
	for _, f := range []Flavor{Kamailio, OpenSIPS} {
		b.Run(f.String(), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := encodeRequest(f, ByCallID, uint64(i), t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseReply(b *testing.B) {
	in := []byte(`{"jsonrpc":"2.0","error":{"code":404,"message":"Dialog not found"},"id":12}`)
	for b.Loop() {
		if _, err := parseReply(in); err != nil {
			b.Fatal(err)
		}
	}
}
