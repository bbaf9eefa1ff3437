package acct

import (
	"crypto/hmac"
	"crypto/md5"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// A Status-Server (RFC 5997) sent to the accounting port is how a proxy
// (FreeRADIUS's status_check) or `radclient ... status` asks whether the
// server is alive. It carries a random Request Authenticator and must carry
// a Message-Authenticator (HMAC-MD5 keyed with the shared secret, RFC 3579
// section 3.2); without a valid one it is silently discarded.

// validMessageAuthenticator reports whether packet b (its Length checked)
// holds exactly one Message-Authenticator and it is the HMAC-MD5, keyed
// with secret, of the packet with that attribute's value zeroed.
func validMessageAuthenticator(b, secret []byte) bool {
	at := -1
	for i := 20; i < len(b); {
		if i+2 > len(b) {
			return false
		}
		n := int(b[i+1])
		if n < 2 || i+n > len(b) {
			return false
		}
		if radius.Type(b[i]) == rfc2869.MessageAuthenticator_Type {
			if n != 18 || at >= 0 {
				return false
			}
			at = i + 2
		}
		i += n
	}
	if at < 0 {
		return false
	}
	zeroed := append([]byte(nil), b...)
	clear(zeroed[at : at+16])
	mac := hmac.New(md5.New, secret)
	mac.Write(zeroed)
	return hmac.Equal(mac.Sum(nil), b[at:at+16])
}

// answerStatusServer answers a verified Status-Server on the accounting
// port with an Accounting-Response (RFC 5997 section 3). It is signed
// twice over the request's authenticator: with a Message-Authenticator
// (as RFC 3579 signs a reply), then with the Response Authenticator of RFC
// 2866, which w's Encode computes over the attributes, the
// Message-Authenticator included.
func (l *Listener) answerStatusServer(w radius.ResponseWriter, r *radius.Request) {
	resp := r.Response(radius.CodeAccountingResponse)
	rfc2869.MessageAuthenticator_Set(resp, make([]byte, md5.Size))
	// MarshalBinary leaves the authenticator as Response copied it: the
	// request's, which the HMAC covers.
	b, err := resp.MarshalBinary()
	if err != nil {
		l.log.Warn("radius: cannot answer a Status-Server", "from", r.RemoteAddr.String(), "err", err)
		return
	}
	mac := hmac.New(md5.New, r.Secret)
	mac.Write(b)
	rfc2869.MessageAuthenticator_Set(resp, mac.Sum(nil))
	if err := w.Write(resp); err != nil {
		l.log.Warn("radius: cannot answer a Status-Server", "from", r.RemoteAddr.String(), "err", err)
		return
	}
	l.log.Debug("radius: answered a Status-Server", "from", r.RemoteAddr.String())
}
