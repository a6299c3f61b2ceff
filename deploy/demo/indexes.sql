-- Indexes and constraints, created after the bulk load.

CREATE UNIQUE INDEX customers_customer_number_key ON customers (customer_number);
CREATE INDEX customers_email_idx ON customers (lower(email));
CREATE INDEX customers_phone_idx ON customers (phone);

ALTER TABLE bookings ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE bookings ADD FOREIGN KEY (service_id) REFERENCES services (id);
ALTER TABLE bookings ADD FOREIGN KEY (staff_id) REFERENCES staff (id);
CREATE INDEX bookings_customer_starts_idx ON bookings (customer_id, starts_at);

ALTER TABLE invoices ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE UNIQUE INDEX invoices_invoice_number_key ON invoices (invoice_number);
CREATE INDEX invoices_customer_idx ON invoices (customer_id);

ALTER TABLE payments ADD FOREIGN KEY (invoice_id) REFERENCES invoices (id);
CREATE INDEX payments_invoice_idx ON payments (invoice_id);

ALTER TABLE marketing_consents ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE UNIQUE INDEX marketing_consents_customer_channel_key ON marketing_consents (customer_id, channel);

ALTER TABLE consultation_notes ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE consultation_notes ADD FOREIGN KEY (staff_id) REFERENCES staff (id);
CREATE INDEX consultation_notes_customer_idx ON consultation_notes (customer_id);
