package app

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reloadly/rolekeeper/internal/config"
)

// NewLogger builds the zap logger of the config's log section writing to w
// (stderr when nil). Format auto means JSON, unless w is a terminal.
func NewLogger(l config.Log, w io.Writer) (*zap.Logger, error) {
	if w == nil {
		w = os.Stderr
	}
	level := zapcore.InfoLevel
	if l.Level != "" {
		var err error
		if level, err = zapcore.ParseLevel(l.Level); err != nil {
			return nil, fmt.Errorf("log level: %w", err)
		}
	}
	format := l.Format
	if format == "" || format == config.LogAuto {
		format = config.LogJSON
		if isTerminal(w) {
			format = config.LogConsole
		}
	}
	var enc zapcore.Encoder
	if format == config.LogConsole {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		if isTerminal(w) {
			ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}

// isTerminal reports whether w is a character device (a terminal), without
// golang.org/x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
