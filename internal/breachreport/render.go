package breachreport

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/lethe-privacy/lethe/internal/store"
)

// Render writes the authority report of the breach rec in format (FormatHTML or FormatPDF).
func Render(rec store.BreachRecord, format string) ([]byte, error) {
	d := newDocument(rec)
	var buf bytes.Buffer
	var err error
	switch format {
	case FormatHTML:
		err = writeHTML(&buf, d)
	case FormatPDF:
		err = writePDF(&buf, d, rec.UpdatedAt)
	default:
		return nil, fmt.Errorf("rendering the report of breach %s: format must be one of %s", rec.ID, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("rendering the %s report of breach %s: %w", format, rec.ID, err)
	}
	return buf.Bytes(), nil
}

// ValidFormat reports whether format is one a report is rendered in.
func ValidFormat(format string) bool { return slices.Contains(Formats, format) }
