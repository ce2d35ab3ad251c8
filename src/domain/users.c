#include "users.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "document.h"
#include "paging.h"
#include "../core/banned.h"

enum { CREATE, CREDENTIALS, TOUCH, ROLE_OF, ME, PAGE, TOTAL, ACTIVE, NEWEST, SET_ROLE };

static const struct sql_stmt stmts[] = {
	[CREATE] = { "user_create",
		"INSERT INTO users (email, first_name, last_name, password_hash) VALUES ($1, $2, $3, $4)"
		" RETURNING json_build_object('user_id', user_id, 'email', email, 'role', role)::text" },
	[CREDENTIALS] = { "user_credentials", "SELECT user_id, password_hash, role FROM users WHERE email = $1" },
	[TOUCH] = { "user_touch_login", "UPDATE users SET last_login_at = now() WHERE user_id = $1" },
	[ROLE_OF] = { "user_role",
		"SELECT role, coalesce((extract(epoch FROM sessions_valid_after) * 1000)::bigint, 0)"
		" FROM users WHERE user_id = $1" },
	[ME] = { "user_me",
		"SELECT json_append(user_json(u), 'cards', coalesce((SELECT json_agg(c.card_id ORDER BY c.card_id)"
		"  FROM cards c WHERE c.user_id = u.user_id), '[]'))::text FROM users u WHERE u.user_id = $1" },
	/* Keyset paging (paging.h), by id. */
	[PAGE] = { "users_page",
		"WITH " PAGE_OLDEST_FIRST("SELECT * FROM users", "user_id", "$1", "$2")
		" SELECT json_build_object(" PAGE_MEMBERS_OLDEST_FIRST("users", "user_json(s)", "user_id", "$2") ")::text" },
	/* Counted by the registrations themselves (user_counts, 16 rows). */
	[TOTAL] = { "users_total",
		"SELECT json_build_object('total_users', coalesce(sum(users), 0)::bigint)::text FROM user_counts" },
	/* Active: has an active card that travelled in the last 30 days. Riders
	 * counted by their last day of travel, kept by the card writes
	 * (db/migrations/0012_analytics_counters.sql, active_riders). */
	[ACTIVE] = { "users_active_total",
		"SELECT json_build_object('active_users_count', active_riders(now()))::text" },
	[NEWEST] = { "users_newest",
		"SELECT json_build_object('latest_user', json_build_object('user_id', user_id,"
		"  'full_name', btrim(first_name || ' ' || last_name)))::text"
		" FROM users ORDER BY created_at DESC, user_id DESC LIMIT 1" },
	/* A change of role ends the user's logins: every token was issued for the old one. */
	[SET_ROLE] = { "user_set_role",
		"WITH old AS (SELECT role FROM users WHERE user_id = $1 FOR UPDATE)"
		" UPDATE users u SET role = $2, sessions_valid_after = CASE WHEN old.role <> $2 THEN now()"
		"  ELSE u.sessions_valid_after END FROM old WHERE u.user_id = $1"
		" RETURNING user_json(u)::text, CASE WHEN old.role <> $2"
		"  THEN (extract(epoch FROM u.sessions_valid_after) * 1000)::bigint ELSE 0 END" },
};

void users_register_statements(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static int one_doc(struct pg *db, struct arena *a, int stmt, int n, const char *const *v, struct buf *out,
		   struct api_error *err)
{
	return document_read(db, a, &stmts[stmt], n, v, "user", out, err);
}

const char *user_email_normalize(struct arena *a, const char *email)
{
	size_t n = strlen(email);
	const char *at = strchr(email, '@');
	if (n < 3 || n > 254 || !at || at == email || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.'))
		return NULL;
	char *out = arena_strdup(a, email);
	for (char *p = out; *p; p++) {
		if ((unsigned char)*p <= ' ')
			return NULL;
		*p = (char)tolower((unsigned char)*p);
	}
	return out;
}

int user_create(struct pg *db, struct arena *a, const struct new_user *u, struct buf *out, struct api_error *err)
{
	const char *v[] = { u->email, u->first_name, u->last_name, u->password_hash };
	PGresult *r = pg_exec(db, a, &stmts[CREATE], 4, v, err);
	if (!r) {
		if (!strcmp(db->sqlstate, "23505"))
			return api_fail(err, "conflict", "an account with this email already exists");
		return -1;
	}
	document_copy(r, out);
	return 0;
}

int user_credentials(struct pg *db, struct arena *a, const char *email, struct credentials *c, struct api_error *err)
{
	const char *v[] = { email };
	memset(c, 0, sizeof(*c));
	PGresult *r = pg_exec(db, a, &stmts[CREDENTIALS], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		c->user_id = atoll(PQgetvalue(r, 0, 0));
		c->password_hash = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
		c->role = role_parse(PQgetvalue(r, 0, 2));
	}
	return 0;
}

int user_touch_login(struct pg *db, struct arena *a, int64_t user_id, struct api_error *err)
{
	const char *v[] = { pg_int(a, user_id) };
	return pg_exec(db, a, &stmts[TOUCH], 1, v, err) ? 0 : -1;
}

int user_role(struct pg *db, struct arena *a, int64_t user_id, enum role *role, int64_t *valid_after_ms,
	      struct api_error *err)
{
	const char *v[] = { pg_int(a, user_id) };
	PGresult *r = pg_exec(db, a, &stmts[ROLE_OF], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		return api_fail(err, "unauthorized", "the account no longer exists");
	*role = role_parse(PQgetvalue(r, 0, 0));
	*valid_after_ms = atoll(PQgetvalue(r, 0, 1));
	return 0;
}

int user_me(struct pg *db, struct arena *a, int64_t user_id, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, user_id) };
	return one_doc(db, a, ME, 1, v, out, err);
}

int users_page(struct pg *db, struct arena *a, int64_t after_id, int64_t limit, struct buf *out,
	       struct api_error *err)
{
	const char *v[] = { pg_int(a, after_id), pg_int(a, limit) };
	return one_doc(db, a, PAGE, 2, v, out, err);
}

int users_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return one_doc(db, a, TOTAL, 0, NULL, out, err);
}

int users_active_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return one_doc(db, a, ACTIVE, 0, NULL, out, err);
}

int users_newest(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	PGresult *r = pg_exec(db, a, &stmts[NEWEST], 0, NULL, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 1)
		document_copy(r, out);
	return 0;
}

int user_set_role(struct pg *db, struct arena *a, int64_t user_id, enum role role, struct buf *out,
		  int64_t *revoked_ms, struct api_error *err)
{
	const char *v[] = { pg_int(a, user_id), role_name(role) };
	*revoked_ms = 0;
	PGresult *r = pg_exec(db, a, &stmts[SET_ROLE], 2, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		return api_fail(err, "not-found", "user %s does not exist", v[0]);
	document_copy(r, out);
	*revoked_ms = atoll(PQgetvalue(r, 0, 1));
	return 0;
}

/* One statement on an admin connection (no prepared statements there). */
static PGresult *admin_exec(struct pg *db, const char *sql, int n, const char *const *v)
{
	PGresult *r = PQexecParams(db->conn, sql, n, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "transitd: %s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

static void admin_run(struct pg *db, const char *sql)
{
	PGresult *r = admin_exec(db, sql, 0, NULL);
	if (r)
		PQclear(r);
}

/*
 * The account of spec's email exists, its row locked in r (user_id,
 * provisioned_by, role, password_hash): brings it to spec's role and
 * password, unless someone registered it (1, untouched). hash: spec's
 * password hashed. 0, 1, or -1.
 */
static int adopt_account(struct pg *db, PGresult *r, const struct account_spec *spec, const char *hash,
			 int64_t *revoked_ms)
{
	int role_changed = strcmp(PQgetvalue(r, 0, 2), role_name(spec->role)) != 0;
	if (PQgetisnull(r, 0, 1) && role_changed)
		return 1; /* someone registered this email: provisioning never elevates it */
	/* Not marked but already in that role: an account from before the
	 * mark existed (an admin an earlier `migrate` made), or one an admin
	 * promoted. Nothing is elevated; it is adopted as it is. */
	const char *old_hash = PQgetisnull(r, 0, 3) ? NULL : PQgetvalue(r, 0, 3);
	/* A password already set is kept (seed), or replaced only when it is another one. */
	const char *new_hash = hash;
	int password_changed = 0;
	if (old_hash && (spec->keep_password || password_verify(old_hash, spec->password)))
		new_hash = old_hash;
	else if (old_hash)
		password_changed = 1;
	const char *u[] = { PQgetvalue(r, 0, 0), new_hash, role_name(spec->role),
			    role_changed || password_changed ? "true" : "false", spec->provisioner };
	PGresult *w = admin_exec(db,
		"UPDATE users SET password_hash = $2, role = $3, sessions_valid_after = CASE WHEN $4::bool THEN now()"
		"  ELSE sessions_valid_after END, provisioned_by = coalesce(provisioned_by, $5) WHERE user_id = $1"
		" RETURNING CASE WHEN $4::bool THEN (extract(epoch FROM sessions_valid_after) * 1000)::bigint END",
		5, u);
	if (!w)
		return -1;
	if (!PQgetisnull(w, 0, 0))
		*revoked_ms = atoll(PQgetvalue(w, 0, 0));
	PQclear(w);
	return 0;
}

int user_ensure_account(struct pg *db, const struct account_spec *spec, int64_t *user_id, int64_t *revoked_ms)
{
	char hash[128], lower[256];
	*revoked_ms = 0;
	*user_id = 0;
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		struct api_error e;
		if (pg_connect(db, &e))
			return -1;
	}
	/* Emails are stored as registration and login normalise them. */
	struct arena a;
	arena_init(&a);
	const char *email = user_email_normalize(&a, spec->email);
	if (email)
		snprintf(lower, sizeof(lower), "%s", email);
	arena_release(&a);
	if (!email) {
		fprintf(stderr, "transitd: %s is not an email address\n", spec->email);
		return -1;
	}
	if (password_hash(spec->password, hash))
		return -1;
	const char *v[] = { lower, hash, role_name(spec->role), spec->first_name, spec->last_name, spec->provisioner };
	int rc = -1;
	admin_run(db, "BEGIN");
	PGresult *r = admin_exec(db,
		"INSERT INTO users (email, password_hash, role, first_name, last_name, provisioned_by)"
		" VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING RETURNING user_id", 6, v);
	if (!r)
		goto out;
	if (PQntuples(r) == 1) { /* created now: nobody else's */
		*user_id = atoll(PQgetvalue(r, 0, 0));
		PQclear(r);
		rc = 0;
		goto out;
	}
	PQclear(r);
	r = admin_exec(db, "SELECT user_id, provisioned_by, role, password_hash FROM users WHERE email = $1 FOR UPDATE",
		       1, v);
	if (!r)
		goto out;
	if (PQntuples(r) == 1) {
		*user_id = atoll(PQgetvalue(r, 0, 0));
		rc = adopt_account(db, r, spec, hash, revoked_ms);
	}
	PQclear(r);
out:
	admin_run(db, rc < 0 ? "ROLLBACK" : "COMMIT");
	return rc;
}
