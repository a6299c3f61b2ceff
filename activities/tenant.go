package activities

import (
	"cmp"
	"encoding/base64"

	"github.com/lethe-privacy/lethe/internal/exportpkg"
	"github.com/lethe-privacy/lethe/internal/mail"
)

var base64Std = base64.StdEncoding

// branding is how notices to the tenant's subjects look.
func (a *Activities) branding(tenant string) mail.Branding {
	t := a.Tenants[tenant]
	return mail.Branding{Name: cmp.Or(t.Name, tenant), ContactEmail: t.ContactEmail, LogoURL: t.LogoURL, Color: t.Color}
}

// notice is the Art. 15 information the tenant gives in every access export.
func (a *Activities) notice(tenant string) exportpkg.Art15Notice {
	t := a.Tenants[tenant]
	return exportpkg.DefaultNotice(cmp.Or(t.Name, tenant), t.ContactEmail)
}
