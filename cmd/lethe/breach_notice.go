package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/workflows"
)

// withSubjectNotice gives lethe breaches notify its --find and --csv: without --rule, the
// command starts notifying the people affected instead of recording a clock's notification.
func withSubjectNotice(f *requestsFlags, c *cobra.Command, rule *string) *cobra.Command {
	var finds []string
	var file string
	var resume bool
	c.Flags().StringArrayVar(&finds, "find", nil, `a finder the connectors run, with its criteria as a query: "NAME?from=...&to=..."; repeatable`)
	c.Flags().StringVar(&file, "csv", "", "a CSV of the people affected: email[,phone[,name]] rows, header optional")
	c.Flags().BoolVar(&resume, "resume", false, "tell the people a failed or cancelled notice run left unsent")
	record := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case *rule != "" && (len(finds) > 0 || file != "" || resume):
			return errors.New("--rule records a clock's notification; --find, --csv and --resume notify the people affected: give one")
		case *rule != "":
			return record(cmd, args)
		case len(finds) == 0 && file == "" && !resume:
			return errors.New("give --rule RULE, --find FINDER, --csv FILE or --resume")
		}
		n := breaches.Subjects{Actor: f.who(), Resume: resume}
		for _, spec := range finds {
			fd, err := parseFind(spec)
			if err != nil {
				return err
			}
			n.Find = append(n.Find, fd)
		}
		if file != "" {
			fh, err := os.Open(file)
			if err != nil {
				return fmt.Errorf("--csv: %w", err)
			}
			defer fh.Close()
			n.CSV = fh
		}
		return withBreaches(f, func(ctx context.Context, s *breaches.Service, tenant string) error {
			st, err := s.Notify(ctx, tenant, args[0], n)
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), f.json, st, func(w io.Writer) { printBreach(w, st) })
		})
	}
	return c
}

// parseFind reads NAME or NAME?param=value&... .
func parseFind(spec string) (workflows.SubjectFind, error) {
	name, query, _ := strings.Cut(spec, "?")
	fd := workflows.SubjectFind{Finder: strings.TrimSpace(name)}
	vals, err := url.ParseQuery(query)
	if fd.Finder == "" || err != nil {
		return fd, fmt.Errorf("--find %q: want NAME or NAME?param=value&param=value", spec)
	}
	for k, v := range vals {
		if fd.Params == nil {
			fd.Params = map[string]any{}
		}
		fd.Params[k] = v[len(v)-1]
	}
	return fd, nil
}

// printNotices shows the runs notifying the people affected and what became of each message.
func printNotices(w io.Writer, st workflows.BreachState) {
	for _, r := range st.Notices {
		fmt.Fprintf(w, "notice run %d (%s, by %s): %s, %d sent, %d failed in %d batches", r.Run, r.Source, r.Actor, r.Status,
			r.Progress.Sent, r.Progress.Failed, r.Progress.Batches)
		if r.Progress.TextBatches > 0 || r.Progress.ToText > 0 {
			fmt.Fprintf(w, " (%d texted, %d texts failed in %d text batches)", r.Progress.Texted, r.Progress.TextFailed, r.Progress.TextBatches)
		}
		if r.Progress.NoContact > 0 {
			fmt.Fprintf(w, ", %d found with no email and no phone to text", r.Progress.NoContact)
		}
		if r.Progress.Released > 0 {
			fmt.Fprintf(w, ", %d left unsent for a later run", r.Progress.Released)
		}
		if r.Error != "" {
			fmt.Fprintf(w, ": %s", r.Error)
		}
		fmt.Fprintln(w)
	}
	if p := st.Subjects; p != nil {
		fmt.Fprintf(w, "people affected: %d listed, %d sent, %d failed, %d delivered, %d bounced, %d waiting, %d addresses cleared\n",
			p.Recipients, p.Sent, p.Failed, p.Delivered, p.Bounced, p.Pending+p.Sending, p.Forgotten)
		if p.Texts > 0 {
			fmt.Fprintf(w, "by text: %d listed, %d texted, %d failed\n", p.Texts, p.Texted, p.TextFailed)
		}
	}
}
