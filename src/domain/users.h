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
/* 401 unauthorized when the user no longer exists. */
int user_role(struct pg *db, struct arena *a, int64_t user_id, enum role *role, struct api_error *err);

int user_me(struct pg *db, struct arena *a, int64_t user_id, struct buf *out, struct api_error *err);
int users_page(struct pg *db, struct arena *a, int64_t after_id, int64_t limit, struct buf *out,
	       struct api_error *err);
int users_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
int users_active_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
/* 0 with out empty when there are no users. */
int users_newest(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
int user_set_role(struct pg *db, struct arena *a, int64_t user_id, enum role role, struct buf *out,
		  struct api_error *err);

/* Creates or updates an account with a password and role, on an admin
 * connection (migrate, seed). only_if_no_password keeps existing passwords. */
int user_ensure_account(struct pg *db, const char *email, const char *password, enum role role,
			const char *first_name, const char *last_name, int only_if_no_password);

#endif
