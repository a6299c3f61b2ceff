package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/deadline"
)

func newDeadlineCmd() *cobra.Command {
	var (
		regime, received, country string
		extended, asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "deadline --regime gdpr|ccpa --received YYYY-MM-DD [--country CC] [--extended] [--json]",
		Short: "Print the due date of a request received on a given day",
		Long: `Print the date by which a data-subject request must be answered.

gdpr: one calendar month from the day of receipt, to the same date next month or, where
      that date does not exist, the month's last day; a due date on a Saturday, Sunday or
      public holiday of --country moves to the next working day. --extended adds the two
      further months of Art. 12(3) to the end of the first month, then applies the same rules.
ccpa: 45 calendar days, 90 with --extended. Calendar days: a weekend or holiday does not
      move the date.

Without --country only weekends move a GDPR due date. The date is printed alone on
stdout; when it was moved, a line on stderr says why. --json prints an object with
due_date and how it was reached.`,
		Example: `  lethe deadline --regime gdpr --received 2026-11-25 --country DE
  lethe deadline --regime gdpr --received 2026-01-31 --extended
  lethe deadline --regime ccpa --received 2026-01-01 --json`,
		Args:                  cobra.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rule, err := deadline.ParseRule(regime, country)
			if err != nil {
				return flagError(regime, err)
			}
			day, err := deadline.ParseDate(received)
			if err != nil {
				return fmt.Errorf("--received: %w", err)
			}
			d, err := deadline.Compute(day, rule, extended)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(deadlineJSON(rule, d, extended))
			}
			fmt.Fprintln(cmd.OutOrStdout(), d.Due.Format(deadline.DateLayout))
			if d.Rolled() {
				fmt.Fprintln(cmd.ErrOrStderr(), d.Explain())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&regime, "regime", "", "gdpr or ccpa (required)")
	f.StringVar(&received, "received", "", "date of receipt, YYYY-MM-DD, in the tenant's time zone (required)")
	f.StringVar(&country, "country", "", "ISO 3166-1 alpha-2 code whose public holidays count, e.g. DE, FR, GB")
	f.BoolVar(&extended, "extended", false, "include the extension (GDPR two further months, CCPA 45 more days)")
	f.BoolVar(&asJSON, "json", false, "print a JSON object instead of the date")
	_ = cmd.MarkFlagRequired("regime")
	_ = cmd.MarkFlagRequired("received")
	return cmd
}

// flagError names the flag at fault: ParseRule checks the regime first.
func flagError(regime string, err error) error {
	if _, rerr := deadline.ParseRegime(regime); rerr != nil {
		return fmt.Errorf("--regime: %w", err)
	}
	return fmt.Errorf("--country: %w", err)
}

type deadlineOutput struct {
	Regime    deadline.Regime `json:"regime"`
	Received  string          `json:"received"`
	Country   *string         `json:"country"` // null: weekends only
	Extended  bool            `json:"extended"`
	Period    string          `json:"period"`
	PeriodEnd string          `json:"period_end"`
	DueDate   string          `json:"due_date"`
	Rolled    bool            `json:"rolled"`
	Reason    string          `json:"reason,omitempty"`
	Skipped   []skippedDay    `json:"skipped"`
}

type skippedDay struct {
	Date   string `json:"date"`
	Reason string `json:"reason"`
}

func deadlineJSON(rule deadline.Rule, d deadline.Deadline, extended bool) deadlineOutput {
	out := deadlineOutput{
		Regime:    rule.Regime,
		Received:  d.Received.Format(deadline.DateLayout),
		Extended:  extended,
		Period:    d.Period,
		PeriodEnd: d.End.Format(deadline.DateLayout),
		DueDate:   d.Due.Format(deadline.DateLayout),
		Rolled:    d.Rolled(),
		Reason:    d.Explain(),
		Skipped:   []skippedDay{},
	}
	if rule.Country != "" {
		out.Country = &rule.Country
	}
	for _, s := range d.Skipped {
		out.Skipped = append(out.Skipped, skippedDay{s.Date.Format(deadline.DateLayout), s.Reason})
	}
	return out
}
