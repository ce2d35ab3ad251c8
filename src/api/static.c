/*
 * Static files: the console (every file under WEB_DIR/console, its
 * index.html also at "/"), the npm files it imports (named in
 * WEB_DIR/vendor.json, served under /vendor/), the payment checkout page,
 * Swagger UI and the OpenAPI document. All are read and gzipped once at start and written from memory
 * (no copy per request), with an ETag for each representation.
 *
 * A request is answered from the table built at start, looked up by its
 * path: nothing on disk is opened for a request, so no path a client sends
 * can reach a file outside that table (no "..", no symbolic links, no dot
 * files, only known extensions are loaded).
 */
#include <dirent.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "../http/router.h"
#include "../store/embedded.h"
#include "api.h"
#include "../core/banned.h"

#define STATIC_MAX_FILES 1024
#define STATIC_MAX_BYTES (16u << 20) /* one file */
#define STATIC_MAX_DEPTH 6

#define CC_REVALIDATE "no-cache"             /* the ETag is checked on every use */
#define CC_PACKAGE "public, max-age=86400"   /* npm files change with a version bump */

struct representation {
	const char *data;
	size_t len;
	char etag[24]; /* "<16 hex>" or "<16 hex>-gz", quotes included */
};

struct static_file {
	char *path;       /* the URL path it answers */
	char *file;       /* under WEB_DIR; NULL for the embedded OpenAPI document */
	const char *type;
	const char *cache_control;
	char *csp;       /* an HTML page: its Content-Security-Policy */
	struct representation plain, gz; /* gz.data is NULL when gzip does not pay */
	char *owned;                     /* plain.data when read from a file */
};

static struct static_file *files;
static size_t nfiles, capfiles;

/* The pages and assets at fixed paths (Swagger UI comes from npm). */
static const struct {
	const char *path, *file, *cache_control;
} fixed[] = {
	{ "/", "console/index.html", CC_REVALIDATE },
	{ "/checkout/{payment_id}", "checkout.html", CC_REVALIDATE },
	{ "/docs", "docs.html", CC_REVALIDATE },
	{ "/docs/swagger-ui.css", "node_modules/swagger-ui-dist/swagger-ui.css", CC_PACKAGE },
	{ "/docs/swagger-ui-bundle.js", "node_modules/swagger-ui-dist/swagger-ui-bundle.js", CC_PACKAGE },
	{ "/docs/swagger-ui-standalone-preset.js", "node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js",
	  CC_PACKAGE },
	{ "/docs/favicon-32x32.png", "node_modules/swagger-ui-dist/favicon-32x32.png", CC_PACKAGE },
	{ "/openapi.json", NULL, CC_REVALIDATE },
};

/* What is served, by extension; other files are not loaded. */
static const struct {
	const char *ext, *type;
	int compress;
} types[] = {
	{ ".html", "text/html; charset=utf-8", 1 },
	{ ".js", "text/javascript; charset=utf-8", 1 },
	{ ".mjs", "text/javascript; charset=utf-8", 1 },
	{ ".css", "text/css; charset=utf-8", 1 },
	{ ".json", "application/json; charset=utf-8", 1 },
	{ ".map", "application/json; charset=utf-8", 1 },
	{ ".svg", "image/svg+xml", 1 },
	{ ".txt", "text/plain; charset=utf-8", 1 },
	{ ".png", "image/png", 0 },
	{ ".ico", "image/x-icon", 0 },
	{ ".woff2", "font/woff2", 0 },
};

static int type_of(const char *name, const char **type, int *compress)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t e = strlen(types[i].ext);
		if (n > e && !strcmp(name + n - e, types[i].ext)) {
			*type = types[i].type;
			*compress = types[i].compress;
			return 0;
		}
	}
	return -1;
}

/* A path segment worth serving: letters, digits, '.', '_', '-', not
 * starting with a dot (no "..", no hidden files). */
static int safe_segment(const char *s, size_t n)
{
	if (!n || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Every '/'-separated segment of a relative path is safe. */
static int safe_path(const char *p)
{
	if (!*p)
		return 0;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (!safe_segment(p, n))
			return 0;
		p += n;
		if (*p)
			p++;
		if (!*p && p[-1] == '/')
			return 0;
	}
	return 1;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= STATIC_MAX_BYTES)
		buf_add(&b, chunk, n);
	fclose(f);
	if (b.len > STATIC_MAX_BYTES) {
		buf_release(&b);
		return NULL;
	}
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

/* Linear: used while loading, before the table is sorted. */
static struct static_file *find(const char *path)
{
	for (size_t i = 0; i < nfiles; i++)
		if (!strcmp(files[i].path, path))
			return &files[i];
	return NULL;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct static_file *)a)->path, ((const struct static_file *)b)->path);
}

static const struct static_file *lookup(const char *path)
{
	struct static_file key = { .path = (char *)path };
	return nfiles ? bsearch(&key, files, nfiles, sizeof(*files), by_path) : NULL;
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

/* Adds path → file (relative to web_dir, NULL: the OpenAPI document) and
 * loads it. A path already present keeps its first file. */
static void add(const char *web_dir, const char *path, const char *file, const char *cache_control)
{
	const char *type = "application/json; charset=utf-8";
	int compress = 1;
	if (find(path))
		return;
	if (file && type_of(file, &type, &compress)) {
		log_msg(LOG_DEBUG, "static: %s has no known type; not served", file);
		return;
	}
	if (nfiles == STATIC_MAX_FILES) {
		log_msg(LOG_WARN, "static: more than %d files; %s is not served", STATIC_MAX_FILES, path);
		return;
	}
	if (nfiles == capfiles) {
		capfiles = capfiles ? 2 * capfiles : 64;
		files = xrealloc(files, capfiles * sizeof(*files));
	}
	struct static_file *f = &files[nfiles++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	f->file = file ? xstrdup(file) : NULL;
	f->type = type;
	f->cache_control = cache_control;
	if (file) {
		char full[1024];
		int n = snprintf(full, sizeof(full), "%s/%s", web_dir, file);
		f->owned = n > 0 && (size_t)n < sizeof(full) ? read_file(full, &f->plain.len) : NULL;
		f->plain.data = f->owned;
		if (!f->owned) {
			log_msg(LOG_WARN, "static file %s is missing or too large (run make to fetch web assets)", full);
			return;
		}
	} else {
		f->plain.data = embedded_docs[0].start;
		f->plain.len = embedded_len(&embedded_docs[0]);
	}
	set_etag(&f->plain, "");
	if (!strncmp(f->type, "text/html", 9))
		f->csp = page_policy(f->plain.data, f->plain.len);
	if (compress) {
		f->gz.data = gzip_of(f->plain.data, f->plain.len, &f->gz.len);
		if (f->gz.data)
			set_etag(&f->gz, "-gz");
	}
}

/* Every regular file under web_dir/dir (relative), served at prefix/<rel>. */
static void add_tree(const char *web_dir, const char *dir, const char *prefix, int depth)
{
	char full[1024];
	int n = snprintf(full, sizeof(full), "%s/%s", web_dir, dir);
	if (n < 0 || (size_t)n >= sizeof(full))
		return;
	DIR *d = opendir(full);
	if (!d) {
		if (!depth)
			log_msg(LOG_WARN, "static: %s is missing: the console is not served", full);
		return;
	}
	/* readdir's order is the file system's; sorting is not needed, lookups are by name */
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (!safe_segment(e->d_name, len))
			continue;
		char rel[512], entry[1024], url[600];
		struct stat st;
		if ((size_t)snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name) >= sizeof(rel) ||
		    (size_t)snprintf(entry, sizeof(entry), "%s/%s", web_dir, rel) >= sizeof(entry) ||
		    (size_t)snprintf(url, sizeof(url), "%s/%s", prefix, e->d_name) >= sizeof(url))
			continue;
		if (lstat(entry, &st)) /* lstat: a symbolic link is not followed out of the tree */
			continue;
		if (S_ISDIR(st.st_mode) && depth < STATIC_MAX_DEPTH)
			add_tree(web_dir, rel, url, depth + 1);
		else if (S_ISREG(st.st_mode))
			add(web_dir, url, rel, CC_REVALIDATE);
	}
	closedir(d);
}

/* web_dir/vendor.json: {"<name under /vendor/>": "node_modules/<file>", …} */
static void add_vendor(const char *web_dir)
{
	char full[1024];
	json_error_t jerr;
	snprintf(full, sizeof(full), "%s/vendor.json", web_dir);
	json_t *doc = json_load_file(full, 0, &jerr);
	if (!json_is_object(doc)) {
		log_msg(LOG_WARN, "static: %s is missing or not a JSON object; no /vendor files", full);
		json_decref(doc);
		return;
	}
	const char *name;
	json_t *v;
	json_object_foreach(doc, name, v) {
		const char *file = json_string_value(v);
		char url[600];
		if (!file || strncmp(file, "node_modules/", 13) || !safe_path(name) || !safe_path(file) ||
		    (size_t)snprintf(url, sizeof(url), "/vendor/%s", name) >= sizeof(url)) {
			log_msg(LOG_WARN, "static: vendor.json entry \"%s\" is refused (a safe name and a file under "
					  "node_modules/)", name);
			continue;
		}
		add(web_dir, url, file, CC_PACKAGE);
	}
	json_decref(doc);
}

void static_load(const char *web_dir)
{
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		add(web_dir, fixed[i].path, fixed[i].file, fixed[i].cache_control);
	add_tree(web_dir, "console", "/console", 0);
	add_vendor(web_dir);
	if (nfiles)
		qsort(files, nfiles, sizeof(*files), by_path);
	log_msg(LOG_DEBUG, "static: %zu files", nfiles);
}

void static_free(void)
{
	for (size_t i = 0; i < nfiles; i++) {
		free(files[i].path);
		free(files[i].file);
		free(files[i].owned);
		free(files[i].csp);
		free((char *)files[i].gz.data);
	}
	free(files);
	files = NULL;
	nfiles = capfiles = 0;
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
	/* A {*file} route names its file by the path; other routes by the pattern
	 * (so "/docs/" is "/docs"). */
	const char *key = router_rest(req->route->pattern, req->path) ? req->path : req->route->pattern;
	const struct static_file *f = lookup(key);
	if (f && f->plain.data) {
		const struct representation *r =
			f->gz.data && accepts_gzip(request_header(req, "Accept-Encoding")) ? &f->gz : &f->plain;
		reply_header(req, "ETag", r->etag);
		reply_header(req, "Cache-Control", f->cache_control);
		req->res.page_csp = f->csp; /* with Referrer-Policy, added to every answer's headers */
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
