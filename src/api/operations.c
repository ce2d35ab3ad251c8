/* GET /operations/{id}: the outcome of an asynchronous command. */
#include "../domain/operations.h"
#include "../http/worker.h"
#include "api.h"
#include "params.h"
#include "../core/banned.h"

void operation_get_one(struct request *req, struct worker *w)
{
	struct api_error e;
	/* A rider sees only their own; anyone else's is answered as missing. */
	int64_t owner = request_rider_id(req);
	if (operation_get(&w->primary, &req->arena, req->ids[0], owner, reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}
