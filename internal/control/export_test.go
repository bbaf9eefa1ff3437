package control

import "time"

// SetAuthorize replaces the peer check, so refusal can be tested without a
// second uid.
func (s *Server) SetAuthorize(fn func(uid, gid uint32) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorize = fn
}

// Allowed exposes the default peer check with a given control gid.
func (s *Server) Allowed(uid, gid uint32, controlGID int) error {
	saved := s.gid
	s.gid = controlGID
	defer func() { s.gid = saved }()
	return s.allowed(uid, gid)
}

var DecodeRequest = decodeRequest
var DecodeResponse = decodeResponse

// SetStreamTimeout replaces writeTimeout for streamed replies. Call it
// before Serve.
func (s *Server) SetStreamTimeout(d time.Duration) { s.streamTimeout = d }
