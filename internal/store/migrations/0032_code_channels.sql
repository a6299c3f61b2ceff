-- The channel each verification code went by. Checking a code proves the identifier that
-- channel reached and nothing else: an emailed code the email address, a texted code the
-- phone number. Every code issued before texts existed was emailed.
ALTER TABLE verification_codes ADD COLUMN channel text NOT NULL DEFAULT 'email'
    CONSTRAINT verification_codes_channel CHECK (channel IN ('email', 'sms'));
