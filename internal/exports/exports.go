// Package exports sends stored exports to the people who download them. The store itself is
// connectors/exportstore, public because connectors write to it.
package exports

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// DownloadStall is how long a download may go without sending a byte before it is cut.
const DownloadStall = time.Minute

// Send copies an export to an HTTP response. The server's write timeout bounds ordinary
// answers and would cut a large download on a slow link, so each chunk that goes out moves the
// connection's write deadline on by stall: a download that keeps moving is never cut, one that
// stalls is.
func Send(w http.ResponseWriter, body io.Reader, stall time.Duration) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 64<<10)
	for {
		// Not every ResponseWriter supports deadlines (test recorders); those have none to move.
		_ = rc.SetWriteDeadline(time.Now().Add(stall))
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
