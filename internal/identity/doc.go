// Package identity proves that the person behind a privacy request is its data subject,
// before any personal data leaves Lethe. A request waits in identity_pending until one of:
//
//   - a one-time code (Codes): six digits emailed to the subject's address or texted to their
//     phone number (Channel, chosen by Choose), stored only as an HMAC with its channel once
//     the provider accepted it, valid for 15 minutes, dead after 5 wrong tries, at most 5
//     codes per request an hour over both channels, and usable once; it proves the identifier
//     its channel reached and no other. The request service also bounds the guesses per
//     subject across all of the subject's requests (internal/limits);
//   - an identity assertion from the tenant's own application (VerifyAssertion): the host app
//     already knows its logged-in user and says so with a signed token;
//   - a staff member who checked the subject's identity themselves.
//
// # Minting an identity assertion (for host-app integrators)
//
// When your application's MyAccount page calls Lethe on behalf of a user who is logged in,
// send an identity assertion with the request. Lethe then treats the subject as verified and
// sends no email code. The assertion is a JWT (RFC 7519):
//
//   - Algorithm: HS256 only, signed with your tenant's assertion key (tenants[].assertion_key
//     in Lethe's configuration; at least 32 characters, kept as secret as a password). Tokens
//     with any other algorithm, or "none", are refused.
//   - aud: exactly Lethe's public URL (http.public_url, no trailing slash) + "/" + your tenant
//     id, e.g. "https://privacy.example.com/acme". A string, or an array holding only that
//     string.
//   - iat: when you minted it (seconds since the epoch). Required; at most one minute ahead of
//     Lethe's clock.
//   - exp: required, after iat and at most 10 minutes after it. Mint a fresh assertion for each
//     call rather than caching one; a couple of minutes is plenty.
//   - jti: required; a unique random id per assertion. Lethe accepts each jti once, so a
//     captured assertion cannot be replayed.
//   - The subject, at least one of: email (a bare address, "ada@example.com"), phone (E.164,
//     "+4915112345678"), customer_id (your own customer number, as the database connector
//     knows it). Lethe fills the request's missing identifiers from the assertion and
//     refuses a request naming an identifier the assertion does not carry or that differs.
//   - Other claims (iss, sub, ...) are ignored; nbf, if present, is honoured.
//
// Mint it on your server, never in the browser: the key must not reach the user's device.
// In Go with github.com/golang-jwt/jwt/v5:
//
//	now := time.Now()
//	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
//		"aud":         "https://privacy.example.com/acme",
//		"iat":         now.Unix(),
//		"exp":         now.Add(2 * time.Minute).Unix(),
//		"jti":         uuid.NewString(),
//		"email":       user.Email,
//		"customer_id": user.CustomerNumber,
//	}).SignedString(assertionKey)
//
// In Node.js with jsonwebtoken:
//
//	jwt.sign({ email: user.email, customer_id: user.customerNumber },
//	  assertionKey, { algorithm: "HS256", audience: "https://privacy.example.com/acme",
//	  expiresIn: "2m", jwtid: crypto.randomUUID() });
//
// Lethe answers a rejected assertion with one of: expired (exp passed or nbf not reached —
// check your server's clock), forged (wrong key or algorithm, or the token was altered),
// audience (aud does not name this Lethe and tenant), claims (exp/iat missing or too far apart,
// no subject identifier, or one malformed), replayed (this jti was already used). Error
// messages never repeat claim values.
package identity
