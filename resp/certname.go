package resp

import "net/url"

// ClientName returns the name in a client certificate's URI SAN
// mnemo://client/<name>, the convention every mnemo port follows.
// NB: a local parse until internal/security has its helper for it.
func ClientName(uris []*url.URL) (string, bool) {
	for _, u := range uris {
		if u == nil || u.Scheme != "mnemo" || u.Host != "client" || len(u.Path) < 2 || u.Path[0] != '/' {
			continue
		}
		name := u.Path[1:]
		if name == "" || len(name) > 128 || u.RawQuery != "" || u.Fragment != "" {
			continue
		}
		ok := true
		for i := 0; i < len(name); i++ {
			if ch := name[i]; ch <= ' ' || ch == '/' || ch > '~' {
				ok = false
				break
			}
		}
		if ok {
			return name, true
		}
	}
	return "", false
}
