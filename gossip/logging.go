package gossip

import (
	"bytes"
	"log"

	"github.com/rs/zerolog"
)

// memberlistLog adapts memberlist's *log.Logger output to zerolog.
// memberlist writes one line per Printf, tagged "[DEBUG]", "[INFO]",
// "[WARN]" or "[ERR]" and usually prefixed "memberlist: "; a few lines carry
// no tag and are logged at info.
type memberlistLog struct {
	log zerolog.Logger
}

// newMemberlistLogger returns a *log.Logger for memberlist and its
// transport of node id that writes to l.
func newMemberlistLogger(l zerolog.Logger, id string) *log.Logger {
	return log.New(memberlistLog{log: l.With().Str("component", "memberlist").Str("node", id).Logger()}, "", 0)
}

// Write logs one memberlist line. It never fails: a logger must not break
// memberlist.
func (w memberlistLog) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(p)
	w.log.WithLevel(level).Msg(msg)
	return len(p), nil
}

// parseMemberlistLine splits a memberlist log line into its level and its
// message, less the tag and the "memberlist: " prefix.
func parseMemberlistLine(p []byte) (zerolog.Level, string) {
	line := bytes.TrimSpace(p)
	level := zerolog.InfoLevel
	if len(line) > 0 && line[0] == '[' {
		if end := bytes.IndexByte(line, ']'); end > 0 {
			switch string(line[1:end]) {
			case "DEBUG", "TRACE":
				level = zerolog.DebugLevel
			case "INFO":
				level = zerolog.InfoLevel
			case "WARN", "WARNING":
				level = zerolog.WarnLevel
			case "ERR", "ERROR":
				level = zerolog.ErrorLevel
			}
			line = bytes.TrimSpace(line[end+1:])
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	return level, string(line)
}
