/* The OpenAPI document, the Swagger UI page and the dashboard: read and
 * gzipped once at start, then written from memory (no copy per request),
 * with an ETag for each representation. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "../store/embedded.h"
#include "api.h"
#include "../core/banned.h"

struct representation {
	const char *data;
	size_t len;
	char etag[24]; /* "<16 hex>" or "<16 hex>-gz", quotes included */
};

static struct static_file {
	const char *path; /* the route pattern it answers */
	const char *file; /* under WEB_DIR; NULL for the embedded OpenAPI document */
	const char *type;
	const char *cache_control;
	struct representation plain, gz; /* gz.data is NULL when gzip does not pay */
	char *owned;                     /* plain.data when read from a file */
	char *csp;                       /* pages: their Content-Security-Policy */
} files[] = {
#define FILE(p, f, t, cc) { .path = p, .file = f, .type = t, .cache_control = cc }
	FILE("/", "index.html", "text/html; charset=utf-8", "no-cache"),
	/* a page with pay buttons: like every page, never inside another site's frame */
	FILE("/checkout/{payment_id}", "checkout.html", "text/html; charset=utf-8", "no-cache"),
	FILE("/docs", "docs.html", "text/html; charset=utf-8", "no-cache"),
	FILE("/docs/swagger-ui.css", "node_modules/swagger-ui-dist/swagger-ui.css", "text/css; charset=utf-8",
	     "public, max-age=86400"),
	FILE("/docs/swagger-ui-bundle.js", "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
	     "text/javascript; charset=utf-8", "public, max-age=86400"),
	FILE("/docs/swagger-ui-standalone-preset.js", "node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js",
	     "text/javascript; charset=utf-8", "public, max-age=86400"),
	FILE("/docs/favicon-32x32.png", "node_modules/swagger-ui-dist/favicon-32x32.png", "image/png",
	     "public, max-age=86400"),
	FILE("/openapi.json", NULL, "application/json; charset=utf-8", "no-cache"),
#undef FILE
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

static void set_etag(struct representation *r, const char *suffix)
{
	unsigned char h[8];
	char hex[17];
	crypto_generichash(h, sizeof(h), (const unsigned char *)r->data, r->len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(r->etag, sizeof(r->etag), "\"%s%s\"", hex, suffix);
}

/* A gzip member of data, or NULL when it would not save a tenth. */
static char *gzip_of(const char *data, size_t len, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&z, len);
	char *out = xmalloc(cap);
	z.next_in = (unsigned char *)data;
	z.avail_in = (uInt)len;
	z.next_out = (unsigned char *)out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END || *out_len > len - len / 10) {
		free(out);
		return NULL;
	}
	return out;
}

/* Appends " 'sha256-<base64>'" for the body of every inline element of the
 * given kind (<script> without src, <style>) in the page, so the policy
 * allows exactly the page's own inline code and nothing injected. */
static void add_inline_hashes(struct buf *b, const char *page, size_t len, const char *tag)
{
	char open[16], close[16];
	snprintf(open, sizeof(open), "<%s", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	const char *end = page + len;
	for (const char *p = page; (p = memmem(p, (size_t)(end - p), open, strlen(open)));) {
		const char *gt = memchr(p, '>', (size_t)(end - p));
		if (!gt)
			return;
		const char *body = gt + 1;
		const char *stop = memmem(body, (size_t)(end - body), close, strlen(close));
		if (!stop)
			return;
		if (!memmem(p, (size_t)(gt - p), " src=", 5)) {
			unsigned char h[crypto_hash_sha256_BYTES];
			char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
			crypto_hash_sha256(h, (const unsigned char *)body, (unsigned long long)(stop - body));
			sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
			buf_addf(b, " 'sha256-%s'", b64);
		}
		p = stop;
	}
}

/* A page may run its own scripts and styles and those it names on this
 * origin, talk to this origin, and be framed by nobody. Swagger UI shows
 * inline SVG (data: images) and sets style attributes from its scripts. */
static char *page_policy(const char *page, size_t len)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "default-src 'none'; script-src 'self'");
	add_inline_hashes(&b, page, len, "script");
	buf_adds(&b, "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'"
		     "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
	size_t n;
	return buf_detach(&b, &n);
}

void static_load(const char *web_dir)
{
	for (size_t i = 0; i < NFILES; i++) {
		struct static_file *f = &files[i];
		if (f->file) {
			char path[1024];
			snprintf(path, sizeof(path), "%s/%s", web_dir, f->file);
			f->owned = read_file(path, &f->plain.len);
			f->plain.data = f->owned;
			if (!f->owned) {
				log_msg(LOG_WARN, "static file %s is missing (run make to fetch web assets)", path);
				continue;
			}
		} else {
			f->plain.data = embedded_docs[0].start;
			f->plain.len = embedded_len(&embedded_docs[0]);
		}
		set_etag(&f->plain, "");
		if (!strncmp(f->type, "text/html", 9))
			f->csp = page_policy(f->plain.data, f->plain.len);
		if (strncmp(f->type, "image/", 6)) {
			f->gz.data = gzip_of(f->plain.data, f->plain.len, &f->gz.len);
			if (f->gz.data)
				set_etag(&f->gz, "-gz");
		}
	}
}

void static_free(void)
{
	for (size_t i = 0; i < NFILES; i++) {
		free(files[i].owned);
		free(files[i].csp);
		files[i].csp = NULL;
		free((char *)files[i].gz.data);
		memset(&files[i].plain, 0, sizeof(files[i].plain));
		memset(&files[i].gz, 0, sizeof(files[i].gz));
		files[i].owned = NULL;
	}
}

/* Accept-Encoding names gzip (or *) with a q above 0. */
static int accepts_gzip(const char *ae)
{
	while (ae && *ae) {
		while (*ae == ' ' || *ae == ',')
			ae++;
		size_t n = strcspn(ae, ",;");
		int named = (n == 4 && !strncasecmp(ae, "gzip", 4)) || (n == 6 && !strncasecmp(ae, "x-gzip", 6)) ||
			    (n == 1 && *ae == '*');
		const char *end = ae + strcspn(ae, ",");
		const char *q = strcasestr(ae, "q=");
		int zero = q && q < end && strtod(q + 2, NULL) <= 0;
		if (named)
			return !zero;
		ae = end;
	}
	return 0;
}

/* If-None-Match holds tag (weak comparison) or "*". */
static int none_match(const char *inm, const char *tag)
{
	size_t tlen = strlen(tag);
	while (inm && *inm) {
		while (*inm == ' ' || *inm == ',')
			inm++;
		if (*inm == '*')
			return 1;
		if (!strncmp(inm, "W/", 2))
			inm += 2;
		size_t n = strcspn(inm, ", ");
		if (n == tlen && !strncmp(inm, tag, n))
			return 1;
		inm += n;
	}
	return 0;
}

void static_get(struct request *req, struct worker *w)
{
	(void)w;
	for (size_t i = 0; i < NFILES; i++) {
		const struct static_file *f = &files[i];
		if (strcmp(f->path, req->route->pattern))
			continue;
		if (!f->plain.data)
			break;
		const struct representation *r =
			f->gz.data && accepts_gzip(request_header(req, "Accept-Encoding")) ? &f->gz : &f->plain;
		reply_header(req, "ETag", r->etag);
		req->res.page_csp = f->csp;
		reply_header(req, "Cache-Control", f->cache_control);
		if (f->gz.data)
			reply_header(req, "Vary", "Accept-Encoding");
		if (none_match(request_header(req, "If-None-Match"), r->etag)) {
			req->res.status = 304;
			return;
		}
		reply(req, 200);
		req->res.content_type = f->type;
		req->res.static_body = r->data;
		req->res.static_len = r->len;
		if (r == &f->gz)
			reply_header(req, "Content-Encoding", "gzip");
		return;
	}
	struct api_error e;
	api_fail(&e, "not-found", "%s is not installed on this server", req->path);
	reply_problem(req, &e);
}
