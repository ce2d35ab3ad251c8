#ifndef TRANSITD_DOMAIN_USERS_H
#define TRANSITD_DOMAIN_USERS_H
/*
 * Accounts: registration, credentials, roles, and the user counts of the
 * earlier API. Functions write JSON into out and return 0, or -1 with err.
 */
#include <stdint.h>

#include "../auth/auth.h"
#include "../core/buf.h"
#include "../store/pg.h"

void users_register_statements(void);

/* The address in the form accounts keep it (lower case), allocated in a,
 * or NULL when email is not a plausible address (3 to 254 bytes, one '@'
 * with text before it and a dot after it, no blanks or control bytes). */
const char *user_email_normalize(struct arena *a, const char *email);

struct new_user {
	const char *email, *first_name, *last_name, *password_hash;
};
/* 409 conflict when the email is taken. */
int user_create(struct pg *db, struct arena *a, const struct new_user *u, struct buf *out, struct api_error *err);

struct credentials {
	int64_t user_id;
	const char *password_hash; /* NULL: unknown email or no password */
	enum role role;
};
/* Never fails for an unknown email: creds->user_id is 0 then. */
int user_credentials(struct pg *db, struct arena *a, const char *email, struct credentials *creds,
		     struct api_error *err);
int user_touch_login(struct pg *db, struct arena *a, int64_t user_id, struct api_error *err);
/* The role, and the moment (unix ms, 0 = never) before which the user's
 * logins are over. 401 unauthorized when the user no longer exists. */
int user_role(struct pg *db, struct arena *a, int64_t user_id, enum role *role, int64_t *valid_after_ms,
	      struct api_error *err);

int user_me(struct pg *db, struct arena *a, int64_t user_id, struct buf *out, struct api_error *err);
int users_page(struct pg *db, struct arena *a, int64_t after_id, int64_t limit, struct buf *out,
	       struct api_error *err);
int users_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
int users_active_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
/* 0 with out empty when there are no users. */
int users_newest(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
/* A change to another role ends the user's logins: *revoked_ms is then the
 * cut-off (unix ms) to publish to the revocation list, 0 otherwise. */
int user_set_role(struct pg *db, struct arena *a, int64_t user_id, enum role role, struct buf *out,
		  int64_t *revoked_ms, struct api_error *err);

struct account_spec {
	const char *email, *password, *first_name, *last_name;
	enum role role;
	const char *provisioner; /* "seed" or "admin-env" */
	int keep_password;       /* a password already set stays (the demo accounts) */
};
/*
 * Creates an account for provisioning (migrate, seed) on an admin connection,
 * or brings one it created earlier to the given role and password. An
 * account someone else created (registered) is never elevated: returns 1,
 * untouched; one already in the role (an admin from before accounts were
 * marked, or promoted by an admin) is adopted.
 * When the role or the password of an existing account changes, its logins
 * end: *revoked_ms is the cut-off to publish (0 when nothing changed).
 * 0, 1, or -1 (database error, message on stderr).
 */
int user_ensure_account(struct pg *db, const struct account_spec *spec, int64_t *user_id, int64_t *revoked_ms);

#endif
