package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// seed fixes the dataset: the same options and now always give the same rows.
const seed = 0x1e7e

var (
	firstNames = []string{"Ada", "Ben", "Cleo", "Dev", "Elin", "Farah", "Gus", "Hiro", "Ines", "Jon",
		"Kemi", "Lars", "Maya", "Nils", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tess",
		"Ugo", "Vera", "Wim", "Xena", "Yusuf", "Zoe"}
	lastNames = []string{"Abbott", "Birch", "Cotter", "Dunmore", "Ellery", "Fenwick", "Garside", "Holloway",
		"Ingram", "Jessop", "Kettle", "Lumley", "Marsh", "Northam", "Oakes", "Pennock", "Quarry",
		"Rowntree", "Stobart", "Thwaite", "Upton", "Varley", "Whitlock", "Yardley"}
	domains = []string{"example.com", "example.org", "example.net"}
	streets = []string{"Mill Lane", "Station Road", "Church Street", "Orchard Way", "Victoria Road",
		"Park Avenue", "Kings Row", "Elm Grove"}
	cities       = []string{"Northbridge", "Eastfold", "Westmere", "Southwick", "Lakeby", "Hillcombe"}
	bookingNotes = []string{"Prefers a quiet room", "Usually a few minutes late", "Ask about the loyalty card",
		"Bring own products", "Parking permit requested"}
	allergies      = []string{"latex", "nickel", "PPD hair dye", "lanolin", "fragrance mix", "none known"}
	skinConditions = []string{"eczema", "rosacea", "psoriasis", "contact dermatitis", "acne", "none"}
)

var services = []struct {
	name     string
	minutes  int32
	priceCts int64
}{
	{"Haircut", 45, 4500}, {"Colour", 120, 9500}, {"Facial", 60, 6500},
	{"Manicure", 45, 3000}, {"Massage", 60, 7000}, {"Brow shaping", 20, 1800},
}

var staffNames = []string{"Alex R.", "Bea K.", "Cyd M.", "Dana T.", "Eli W."}

// person is what the generator needs to build one customer's rows.
type person struct {
	number, first, last, email, phone string
	future, unpaid, health            bool
	pastBookings                      int
}

var wellKnown = []person{
	{number: ClearCustomerNumber, first: "Nora", last: "Clearwater", email: ClearCustomerEmail, phone: ClearCustomerPhone, pastBookings: 3},
	{number: FutureBookingCustomerNumber, first: "Felix", last: "Future", email: FutureBookingCustomerEmail, phone: FutureBookingCustomerPhone, pastBookings: 2, future: true},
	{number: UnpaidInvoiceCustomerNumber, first: "Uma", last: "Unpaid", email: UnpaidInvoiceCustomerEmail, phone: UnpaidInvoiceCustomerPhone, pastBookings: 2, unpaid: true},
	{number: HealthNotesCustomerNumber, first: "Hana", last: "Health", email: HealthNotesCustomerEmail, phone: HealthNotesCustomerPhone, pastBookings: 3, health: true},
}

type generator struct {
	now     time.Time
	day     time.Time // start of now's day, UTC
	opts    GenerateOptions
	summary Summary
	rows    int64
	// Next ids of the child tables, so children reference parents without RETURNING.
	bookingID, invoiceID, paymentID, consentID, noteID int64
}

func newGenerator(now time.Time, opts GenerateOptions) *generator {
	return &generator{
		now: now, day: now.UTC().Truncate(24 * time.Hour), opts: opts,
		bookingID: 1, invoiceID: 1, paymentID: 1, consentID: 1, noteID: 1,
	}
}

// reference writes the services and staff lists.
func (g *generator) reference(ctx context.Context, tx pgx.Tx) error {
	var svc, stf [][]any
	for i, s := range services {
		svc = append(svc, []any{int64(i + 1), s.name, s.minutes, s.priceCts})
	}
	for i, n := range staffNames {
		stf = append(stf, []any{int64(i + 1), n})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"services"}, []string{"id", "name", "duration_minutes", "price_cents"}, pgx.CopyFromRows(svc)); err != nil {
		return fmt.Errorf("loading demo services: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staff"}, []string{"id", "display_name"}, pgx.CopyFromRows(stf)); err != nil {
		return fmt.Errorf("loading demo staff: %w", err)
	}
	return nil
}

// batchRows holds one batch of rows per table.
type batchRows struct {
	customers, bookings, invoices, payments, consents, notes [][]any
}

var copyColumns = []struct {
	table string
	cols  []string
	rows  func(*batchRows) [][]any
}{
	{"customers", []string{"id", "customer_number", "first_name", "last_name", "email", "phone", "birth_date", "street", "postcode", "city", "country", "created_at"}, func(b *batchRows) [][]any { return b.customers }},
	{"bookings", []string{"id", "customer_id", "service_id", "staff_id", "starts_at", "status", "notes", "created_at"}, func(b *batchRows) [][]any { return b.bookings }},
	{"invoices", []string{"id", "customer_id", "invoice_number", "billing_name", "billing_address", "amount_cents", "currency", "issued_at", "due_at"}, func(b *batchRows) [][]any { return b.invoices }},
	{"payments", []string{"id", "invoice_id", "amount_cents", "currency", "paid_at", "method", "payer_name", "card_last4"}, func(b *batchRows) [][]any { return b.payments }},
	{"marketing_consents", []string{"id", "customer_id", "channel", "granted", "changed_at"}, func(b *batchRows) [][]any { return b.consents }},
	{"consultation_notes", []string{"id", "customer_id", "staff_id", "recorded_at", "allergies", "skin_conditions", "notes"}, func(b *batchRows) [][]any { return b.notes }},
}

func (b *batchRows) copy(ctx context.Context, tx pgx.Tx) error {
	for _, c := range copyColumns {
		rows := c.rows(b)
		if len(rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("loading demo %s: %w", c.table, err)
		}
	}
	return nil
}

// batch builds the rows of customers lo..hi (ids, 1-based, inclusive).
func (g *generator) batch(lo, hi int) *batchRows {
	b := &batchRows{}
	for id := lo; id <= hi; id++ {
		// One stream per customer: any batch size gives the same rows.
		r := rand.New(rand.NewPCG(seed, uint64(id)))
		var p person
		if id <= len(wellKnown) {
			p = wellKnown[id-1]
		} else {
			p = g.randomPerson(r, id)
		}
		g.customer(r, b, int64(id), p)
	}
	return b
}

func (g *generator) randomPerson(r *rand.Rand, id int) person {
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	return person{
		number: fmt.Sprintf("C%07d", id),
		first:  first,
		last:   last,
		email:  fmt.Sprintf("%s.%s.%d@%s", strings.ToLower(first), strings.ToLower(last), id, domains[r.IntN(len(domains))]),
		// The UK drama range has only a thousand numbers, so large datasets repeat them.
		phone:        fmt.Sprintf("+447700900%03d", 10+id%990),
		pastBookings: -1,
		unpaid:       r.IntN(20) == 0,
		health:       r.IntN(5) == 0,
	}
}

func (g *generator) slot(r *rand.Rand, dayOffset int) time.Time {
	return g.day.AddDate(0, 0, dayOffset).Add(time.Duration(9*60+15*r.IntN(32)) * time.Minute)
}

func (g *generator) customer(r *rand.Rand, b *batchRows, id int64, p person) {
	fullName := p.first + " " + p.last
	created := g.day.AddDate(0, 0, -(760 + r.IntN(900)))
	birth := time.Date(1950+r.IntN(55), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	street := fmt.Sprintf("%d %s", 1+r.IntN(120), streets[r.IntN(len(streets))])
	postcode := fmt.Sprintf("NB%d %d%c%c", 1+r.IntN(20), r.IntN(10), 'A'+rune(r.IntN(26)), 'A'+rune(r.IntN(26)))
	city := cities[r.IntN(len(cities))]
	b.customers = append(b.customers, []any{id, p.number, p.first, p.last, p.email, p.phone, birth, street, postcode, city, "GB", created})
	g.summary.Customers++

	// Bookings: well-known customers have exactly the past ones they need (plus one next week
	// for the future-booking customer); generated customers a mix, some in the future.
	var completed []int64 // service ids of completed bookings, for invoices
	addBooking := func(starts time.Time, status string) {
		svc := int64(1 + r.IntN(len(services)))
		var note any
		if r.IntN(6) == 0 {
			note = bookingNotes[r.IntN(len(bookingNotes))]
		}
		b.bookings = append(b.bookings, []any{g.bookingID, id, svc, int64(1 + r.IntN(len(staffNames))), starts, status, note, starts.AddDate(0, 0, -(1 + r.IntN(30)))})
		g.bookingID++
		g.summary.Bookings++
		if starts.After(g.now) {
			g.summary.FutureBookings++
		}
		if status == "completed" {
			completed = append(completed, svc)
		}
	}
	if p.pastBookings >= 0 {
		for i := 0; i < p.pastBookings; i++ {
			addBooking(g.slot(r, -(30+60*i+r.IntN(20))), "completed")
		}
		if p.future {
			addBooking(g.slot(r, 7), "booked")
		}
	} else {
		for i := 0; i < g.opts.BookingsPerCustomer; i++ {
			if r.IntN(10) == 0 {
				status := "booked"
				if r.IntN(8) == 0 {
					status = "cancelled"
				}
				addBooking(g.slot(r, 1+r.IntN(60)), status)
				continue
			}
			status := "completed"
			if r.IntN(7) == 0 {
				status = "cancelled"
			}
			addBooking(g.slot(r, -(1+r.IntN(720))), status)
		}
	}

	// Invoices for up to two completed bookings; the last one unpaid for some customers.
	address := street + ", " + postcode + " " + city
	if len(completed) > 2 {
		completed = completed[len(completed)-2:]
	}
	for i, svc := range completed {
		amount := services[svc-1].priceCts
		issued := g.day.AddDate(0, 0, -(20 + 40*(len(completed)-1-i) + r.IntN(10)))
		b.invoices = append(b.invoices, []any{g.invoiceID, id, fmt.Sprintf("INV-%08d", g.invoiceID), fullName, address, amount, "GBP", issued, issued.AddDate(0, 0, 14)})
		g.summary.Invoices++
		if p.unpaid && i == len(completed)-1 {
			g.summary.UnpaidInvoices++
		} else {
			method := []string{"card", "cash", "transfer"}[r.IntN(3)]
			var last4 any
			if method == "card" {
				last4 = fmt.Sprintf("%04d", r.IntN(10000))
			}
			b.payments = append(b.payments, []any{g.paymentID, g.invoiceID, amount, "GBP", issued.Add(time.Duration(1+r.IntN(72)) * time.Hour), method, fullName, last4})
			g.paymentID++
			g.summary.Payments++
		}
		g.invoiceID++
	}

	for _, ch := range []string{"email", "sms"} {
		granted := r.IntN(2) == 0
		// The well-known customers are on the marketing list, so the demo shows it erased.
		granted = granted || (ch == "email" && id <= int64(len(wellKnown)))
		b.consents = append(b.consents, []any{g.consentID, id, ch, granted, created.AddDate(0, 0, r.IntN(300))})
		g.consentID++
		g.summary.Consents++
	}

	if p.health {
		n := 1 + r.IntN(2)
		for i := 0; i < n; i++ {
			b.notes = append(b.notes, []any{g.noteID, id, int64(1 + r.IntN(len(staffNames))), g.day.AddDate(0, 0, -(40 + 90*i + r.IntN(30))),
				allergies[r.IntN(len(allergies))], skinConditions[r.IntN(len(skinConditions))], "Patch test before colour treatments"})
			g.noteID++
			g.summary.ConsultationNotes++
		}
	}
	g.rows = g.summary.Customers + g.summary.Bookings + g.summary.Invoices + g.summary.Payments + g.summary.Consents + g.summary.ConsultationNotes
}
