package session

import (
	"errors"
	"strings"
)

var errNoParty = errors.New("no sip:user@host in from or diverter")

// BillingParty returns who pays for a call: "sip:"+diverter when the call
// was diverted, else the sip:user@host inside the From header body, with
// display name, port and parameters stripped, and case folded as the rating
// engine folds it (FoldParty): calls are grouped by this key.
func BillingParty(from, diverter string) (string, error) {
	if diverter != "" && !strings.EqualFold(diverter, "none") {
		return userHost(diverter)
	}
	uri := from
	if i := angleOpen(uri); i >= 0 {
		uri = uri[i+1:]
		j := strings.IndexByte(uri, '>')
		if j < 0 {
			return "", errNoParty
		}
		uri = uri[:j]
	} else if i := strings.IndexByte(uri, ';'); i >= 0 {
		uri = uri[:i] // name-addr without <>: parameters follow ';'
	}
	return userHost(strings.TrimSpace(uri))
}

// angleOpen is the index of the '<' that opens the URI of a name-addr, -1
// when there is none: a '<' inside the quoted display name ("Alice <CEO>")
// is not it.
func angleOpen(s string) int {
	if strings.IndexByte(s, '"') < 0 {
		return strings.IndexByte(s, '<') // the usual case: no quoted name
	}
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // quoted-pair: the next byte is literal
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			return i
		}
	}
	return -1
}

// userHost reduces "sip:user@host:port;params?headers" (scheme optional)
// to "sip:user@host".
func userHost(uri string) (string, error) {
	if i := strings.IndexByte(uri, ':'); i >= 0 {
		switch strings.ToLower(uri[:i]) {
		case "sip", "sips":
			uri = uri[i+1:]
		}
	}
	if i := strings.IndexAny(uri, ";?"); i >= 0 {
		uri = uri[:i]
	}
	at := strings.LastIndexByte(uri, '@')
	if at <= 0 || at == len(uri)-1 {
		return "", errNoParty
	}
	user, host := uri[:at], uri[at+1:]
	if strings.HasPrefix(host, "[") { // IPv6 reference
		if j := strings.IndexByte(host, ']'); j > 0 {
			host = host[:j+1]
		}
	} else if j := strings.IndexByte(host, ':'); j >= 0 {
		host = host[:j]
	}
	if host == "" || strings.ContainsAny(user, notInParty) || strings.ContainsAny(host, notInParty) {
		return "", errNoParty
	}
	return FoldParty("sip:" + user + "@" + host), nil
}

// notInParty are the bytes a billing party's user or host never holds.
const notInParty = " \t\r\n<>\""

// FoldParty folds a billing party as CDRTool does: the engine lower-cases
// the whole From value, user part included (rating-protocol.md), so
// sip:Frank@Example.com and sip:frank@example.com are one account to it and
// must be one party here (re-timing, engine affinity, call_limit). The
// engine is PHP and its strtolower folds ASCII letters only; so does this.
func FoldParty(party string) string {
	for i := 0; i < len(party); i++ {
		if c := party[i]; 'A' <= c && c <= 'Z' {
			b := []byte(party)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return party // already folded: no allocation on the proxy path
}
