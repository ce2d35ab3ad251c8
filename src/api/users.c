/* /api/v1/users…: the caller, the user list and the earlier API's counts. */
#include "../auth/session.h"
#include "../core/json.h"
#include "../core/log.h"
#include "../domain/users.h"
#include "../http/worker.h"
#include "api.h"
#include "params.h"
#include "../core/banned.h"

void users_me(struct request *req, struct worker *w)
{
	struct api_error e;
	if (user_me(&w->primary, &req->arena, req->auth->user_id, reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

void users_list(struct request *req, struct worker *w)
{
	struct api_error e;
	int64_t limit, cursor;
	if (query_page(req, &limit, &cursor, &e) ||
	    users_page(worker_read_db(w), &req->arena, cursor, limit, reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

void users_latest(struct request *req, struct worker *w)
{
	struct api_error e;
	struct buf *out = reply(req, 200);
	if (users_newest(worker_read_db(w), &req->arena, out, &e))
		goto fail;
	if (!out->len)
		reply(req, 204);
	return;
fail:
	reply_problem(req, &e);
}

void users_set_role(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *name;
	if (json_get_str(req->json, "role", 1, 16, &name, &e))
		goto fail;
	enum role role = role_parse(name);
	if (!role) {
		api_fail_field(&e, "role", "must be rider, operator or admin");
		goto fail;
	}
	int64_t revoked_ms;
	if (user_set_role(&w->primary, &req->arena, req->ids[0], role, reply(req, 200), &revoked_ms, &e))
		goto fail;
	/* Committed: the user's logins under the old role end on every instance
	 * (this one already refuses them if Redis cannot be told). */
	if (revoked_ms && session_revoke_user(&w->redis, &req->arena, req->ids[0], revoked_ms))
		log_msg(LOG_WARN, "role change of user %lld: other instances learn of it when Redis is back",
			(long long)req->ids[0]);
	return;
fail:
	reply_problem(req, &e);
}
