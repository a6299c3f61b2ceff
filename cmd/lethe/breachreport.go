package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/breachreport"
	"github.com/lethe-privacy/lethe/internal/store"
)

func newBreachesReportCmd(f *requestsFlags) *cobra.Command {
	var format, out string
	var version int
	cmd := &cobra.Command{
		Use:   "report ID [--format html|pdf] [--out FILE]",
		Short: "Write a breach's report to the supervisory authority, naming what is still missing",
		Long: `Write the report to the supervisory authority (Art. 33 GDPR) of breach ID as the register now
holds it: every Art. 33(3) element with what is still missing, the risk assessment with its
rationale, and every notification clock with its limit, status, notification and the reasons for
any delay. Every version generated is kept; --version N writes an earlier one again. Each
generation and each download is in the audit trail.`,
		Example: `  lethe breaches report B-2026-07 --out B-2026-07.pdf
  lethe breaches report B-2026-07 --format html > report.html
  lethe breaches report B-2026-07 --version 1 --out first.pdf`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBreachReports(f, func(ctx context.Context, s *breachreport.Service, tenant string) error {
				doc, r, err := s.Document(ctx, tenant, args[0], format, version, f.who())
				if err != nil {
					return err
				}
				return writeReport(cmd.OutOrStdout(), cmd.ErrOrStderr(), doc, r, out, f.json)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", breachreport.FormatPDF, "html or pdf")
	cmd.Flags().StringVar(&out, "out", "", "file to write (default: standard output)")
	cmd.Flags().IntVar(&version, "version", 0, "a kept version to write again (default: the current report)")
	return cmd
}

// withBreachReports connects to PostgreSQL (the reports need nothing else) and runs fn with
// the report service.
func withBreachReports(f *requestsFlags, fn func(ctx context.Context, s *breachreport.Service, tenant string) error) error {
	return withStack(f, app.Need{Store: true}, func(ctx context.Context, d *app.Stack, tenant string) error {
		return fn(ctx, d.BreachReports(), tenant)
	})
}

// writeReport writes the document to out (standard output when empty) and says which version
// it is where it does not mix with the document.
func writeReport(stdout, stderr io.Writer, doc []byte, r store.BreachReport, out string, asJSON bool) error {
	say := stdout
	if out == "" || out == "-" {
		if _, err := stdout.Write(doc); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		say, out = stderr, "standard output"
	} else if err := os.WriteFile(out, doc, 0o600); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if asJSON {
		return json.NewEncoder(say).Encode(r)
	}
	_, err := fmt.Fprintf(say, "breach %s: report version %d (%s, from content version %d), %d bytes, sha256 %s, written to %s\n",
		r.BreachID, r.Version, strings.ToUpper(r.Format), r.ContentVersion, r.Bytes, r.SHA256, out)
	return err
}
