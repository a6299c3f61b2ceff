package exportpkg

import (
	"errors"

	"github.com/lethe-privacy/lethe/connectors"
)

// Art15Notice is what GDPR Art. 15(1) and 15(2) require a controller to tell a subject who asks
// for access, beyond the data itself. The categories of data (Art. 15(1)(b)) are not listed
// here: the summary derives them from the columns actually exported.
type Art15Notice struct {
	Controller Controller `json:"controller"`
	// DPOContact is how to reach the data protection officer; empty when none is appointed.
	DPOContact string `json:"dpo_contact,omitempty"`
	// Purposes and their legal bases, Art. 15(1)(a).
	Purposes []Purpose `json:"purposes"`
	// Recipients or categories of recipients, Art. 15(1)(c).
	Recipients []string `json:"recipients"`
	// Retention periods or the criteria used to decide them, Art. 15(1)(d).
	Retention Retention `json:"retention"`
	// Source of data not collected from the subject, Art. 15(1)(g).
	Source string `json:"source"`
	// Rights lists the subject's rights, including rectification, erasure, restriction and
	// objection (Art. 15(1)(e)) and a complaint to a supervisory authority (Art. 15(1)(f)).
	Rights []string `json:"rights"`
	// AutomatedDecisions describes automated decision-making and profiling, or says there is
	// none, Art. 15(1)(h).
	AutomatedDecisions string `json:"automated_decisions"`
	// TransfersSafeguards describes safeguards for transfers outside the EEA, or says there are
	// none, Art. 15(2).
	TransfersSafeguards string `json:"transfers_safeguards"`
}

// Controller identifies who decides how the data is used.
type Controller struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
}

// Purpose is one reason the data is processed.
type Purpose struct {
	Name       string                `json:"name"`
	LegalBasis string                `json:"legal_basis"`
	Categories []connectors.Category `json:"categories,omitempty"`
}

// Retention says how long data is kept: per category where the tenant has set a period, with
// Default for everything else.
type Retention struct {
	Default    string              `json:"default,omitempty"`
	Categories []CategoryRetention `json:"categories,omitempty"`
}

// CategoryRetention is the retention period of one category of data.
type CategoryRetention struct {
	Category connectors.Category `json:"category"`
	Period   string              `json:"period"`
}

// DefaultNotice is generic text for a small business that holds customer records. Every field
// is meant to be reviewed and overridden by the tenant; it exists so that no package ever goes
// out without the information Art. 15 requires.
func DefaultNotice(controllerName, contact string) Art15Notice {
	return Art15Notice{
		Controller: Controller{Name: controllerName, Contact: contact},
		Purposes: []Purpose{
			{
				Name:       "Providing the services you book or buy, and managing your account",
				LegalBasis: "Performance of a contract (Art. 6(1)(b) GDPR)",
				Categories: []connectors.Category{connectors.CategoryIdentity, connectors.CategoryContact},
			},
			{
				Name:       "Invoicing, payments and bookkeeping",
				LegalBasis: "Legal obligation (Art. 6(1)(c) GDPR)",
				Categories: []connectors.Category{connectors.CategoryFinancial},
			},
			{
				Name:       "Health information you gave us so that a treatment is safe for you",
				LegalBasis: "Your explicit consent (Art. 6(1)(a) and Art. 9(2)(a) GDPR)",
				Categories: []connectors.Category{connectors.CategoryHealth},
			},
			{
				Name:       "Newsletters and offers",
				LegalBasis: "Your consent (Art. 6(1)(a) GDPR), which you can withdraw at any time",
				Categories: []connectors.Category{connectors.CategoryMarketing},
			},
		},
		Recipients: []string{
			"Service providers who host and operate our systems on our behalf (processors)",
			"Payment providers, for payments you make",
			"Email and text message providers, for messages we send you",
			"Authorities, where the law requires it",
		},
		Retention: Retention{
			Default: "For as long as you are our customer, and then for as long as the law requires or a legal claim could still be brought.",
			Categories: []CategoryRetention{
				{Category: connectors.CategoryFinancial, Period: "As long as tax and accounting law requires (typically 6 to 10 years)"},
				{Category: connectors.CategoryMarketing, Period: "Until you withdraw your consent or unsubscribe"},
			},
		},
		Source: "We collected this data from you, when you booked, bought or created an account, and from your use of our services.",
		Rights: []string{
			"Access your personal data and receive a copy of it (Art. 15 GDPR)",
			"Have inaccurate data corrected (Art. 16 GDPR)",
			"Have your data erased (Art. 17 GDPR)",
			"Restrict how we use your data (Art. 18 GDPR)",
			"Receive the data you gave us in a machine-readable format and have it sent to another organisation (Art. 20 GDPR)",
			"Object to our use of your data, including for direct marketing (Art. 21 GDPR)",
			"Withdraw your consent at any time, without affecting what was done before (Art. 7(3) GDPR)",
			"Lodge a complaint with a supervisory authority, in particular in the country where you live or work or where you believe the law was broken (Art. 77 GDPR)",
		},
		AutomatedDecisions:  "We do not make decisions about you based solely on automated processing, including profiling, that have legal or similarly significant effects.",
		TransfersSafeguards: "We do not transfer your data outside the European Economic Area. Where a service provider does, the transfer is covered by an adequacy decision or the European Commission's standard contractual clauses (Art. 46 GDPR).",
	}
}

// validate refuses a notice that leaves out what Art. 15 requires a subject be told.
func (n Art15Notice) validate() error {
	var errs []error
	if n.Controller.Name == "" || n.Controller.Contact == "" {
		errs = append(errs, errors.New("controller name and contact are required"))
	}
	if len(n.Purposes) == 0 {
		errs = append(errs, errors.New("at least one purpose is required"))
	}
	for _, p := range n.Purposes {
		if p.Name == "" || p.LegalBasis == "" {
			errs = append(errs, errors.New("every purpose needs a name and a legal basis"))
			break
		}
	}
	if n.Retention.Default == "" && len(n.Retention.Categories) == 0 {
		errs = append(errs, errors.New("retention is required"))
	}
	if len(n.Rights) == 0 {
		errs = append(errs, errors.New("the list of rights is required"))
	}
	return errors.Join(errs...)
}
