/* The OpenAPI document, the Swagger UI page and the dashboard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "../store/embedded.h"
#include "api.h"
#include "../core/banned.h"

static struct static_file {
	const char *path; /* the route pattern it answers */
	const char *file; /* under WEB_DIR */
	const char *type;
	char *data;
	size_t len;
} files[] = {
	{ "/", "index.html", "text/html; charset=utf-8", NULL, 0 },
	{ "/docs", "docs.html", "text/html; charset=utf-8", NULL, 0 },
	{ "/docs/swagger-ui.css", "node_modules/swagger-ui-dist/swagger-ui.css", "text/css; charset=utf-8", NULL, 0 },
	{ "/docs/swagger-ui-bundle.js", "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
	  "text/javascript; charset=utf-8", NULL, 0 },
	{ "/docs/swagger-ui-standalone-preset.js", "node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js",
	  "text/javascript; charset=utf-8", NULL, 0 },
	{ "/docs/favicon-32x32.png", "node_modules/swagger-ui-dist/favicon-32x32.png", "image/png", NULL, 0 },
};
#define NFILES (sizeof(files) / sizeof(files[0]))

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	return buf_detach(&b, len);
}

void static_load(const char *web_dir)
{
	for (size_t i = 0; i < NFILES; i++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", web_dir, files[i].file);
		files[i].data = read_file(path, &files[i].len);
		if (!files[i].data)
			log_msg(LOG_WARN, "static file %s is missing (run make to fetch web assets)", path);
	}
}

void static_free(void)
{
	for (size_t i = 0; i < NFILES; i++) {
		free(files[i].data);
		files[i].data = NULL;
	}
}

void static_get(struct request *req, struct worker *w)
{
	(void)w;
	for (size_t i = 0; i < NFILES; i++) {
		if (strcmp(files[i].path, req->route->pattern))
			continue;
		if (!files[i].data)
			break;
		buf_add(reply(req, 200), files[i].data, files[i].len);
		req->res.content_type = files[i].type;
		reply_header(req, "Cache-Control", "public, max-age=300");
		return;
	}
	struct api_error e;
	api_fail(&e, "not-found", "%s is not installed on this server", req->path);
	reply_problem(req, &e);
}

void openapi_get(struct request *req, struct worker *w)
{
	(void)w;
	const struct embedded_file *doc = &embedded_docs[0];
	reply_json(req, 200, doc->start, embedded_len(doc));
}
