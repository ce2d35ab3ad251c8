#include "framing.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#include "router.h"
#include "../core/banned.h"

enum { LAST_NONE, LAST_TARGET, LAST_NAME, LAST_VALUE };

static http_parser_settings settings;

/* A callback refuses the input: the parser stops with HPE_CB_*. */
static int refuse(struct framing *f, const char *slug, const char *detail)
{
	f->error_slug = slug;
	f->error_detail = detail;
	return -1;
}

/* tchar of RFC 9110: the characters of header names and methods. */
static const unsigned char tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1,
	['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
	['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
	['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
	['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
	['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_token_char(unsigned char c)
{
	return tchar[c];
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *framing_decode(struct arena *a, const char *s, size_t n, int plus_is_space, size_t *out_len)
{
	char *out = arena_alloc(a, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
		}
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* Splits the request target into the decoded path and the raw query. */
static int set_target(struct framing *f, struct request *req, const char *t, size_t n)
{
	const char *path = t;
	size_t plen;
	const char *query = NULL;
	size_t qlen = 0;
	if (n && t[0] == '/') {
		plen = strcspn(t, "?#");
		if (plen > n)
			plen = n;
		if (plen < n && t[plen] == '?') {
			query = t + plen + 1;
			qlen = strcspn(query, "#");
		}
	} else if (n > 7 && (!strncasecmp(t, "http://", 7) || !strncasecmp(t, "https://", 8))) {
		/* absolute-form: the authority is the Host's business, not the path's */
		struct http_parser_url u;
		http_parser_url_init(&u);
		if (http_parser_parse_url(t, n, 0, &u))
			return refuse(f, "bad-request", "the request target is not a valid URL");
		if (u.field_set & (1 << UF_PATH)) {
			path = t + u.field_data[UF_PATH].off;
			plen = u.field_data[UF_PATH].len;
		} else {
			path = "/";
			plen = 1;
		}
		if (u.field_set & (1 << UF_QUERY)) {
			query = t + u.field_data[UF_QUERY].off;
			qlen = u.field_data[UF_QUERY].len;
		}
	} else {
		return refuse(f, "bad-request", "the request target must be a path");
	}
	/* %00 would end the decoded path early and name another resource. */
	size_t dlen;
	req->path = framing_decode(&req->arena, path, plen, 0, &dlen);
	if (strlen(req->path) != dlen)
		req->bad_path = 1;
	req->query_string = query ? arena_strndup(&req->arena, query, qlen) : NULL;
	return 0;
}

/* Ends the current piece: the target, or a header with its value. */
static int commit(struct framing *f)
{
	struct request *req = f->req;
	if (f->last == LAST_TARGET) {
		f->last = LAST_NONE;
		req->raw_target = arena_strndup(&req->arena, f->piece.ptr, f->piece.len);
		buf_reset(&f->piece);
		return 0;
	}
	if (f->last != LAST_NAME && f->last != LAST_VALUE)
		return 0;
	f->last = LAST_NONE;
	const char *name = f->piece.ptr;
	size_t nlen = f->name_len;
	for (size_t i = 0; i < nlen; i++)
		if (!is_token_char((unsigned char)name[i]))
			return refuse(f, "bad-request", "a header name holds a character that is not allowed");
	if (nlen == 0)
		return refuse(f, "bad-request", "a header has an empty name");
	if (f->in_body) { /* a trailer of a chunked body: read, not kept */
		buf_reset(&f->piece);
		return 0;
	}
	if (req->nheaders == FRAMING_MAX_HEADERS)
		return refuse(f, "header-too-large", "the request has too many header fields");
	const char *value = f->piece.ptr + nlen;
	size_t vlen = f->piece.len - nlen;
	while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
		vlen--;
	if (memchr(value, '\0', vlen))
		return refuse(f, "bad-request", "a header value holds a NUL byte");
	if (req->nheaders == f->headers_cap) {
		int cap = f->headers_cap ? f->headers_cap * 2 : 16;
		struct http_header *h = arena_alloc(&req->arena, (size_t)cap * sizeof(*h));
		if (req->nheaders)
			memcpy(h, req->headers, (size_t)req->nheaders * sizeof(*h));
		req->headers = h;
		f->headers_cap = cap;
	}
	struct http_header *h = &req->headers[req->nheaders++];
	h->name = arena_strndup(&req->arena, name, nlen);
	h->value = arena_strndup(&req->arena, value, vlen);
	if (!strcasecmp(h->name, "Host"))
		f->hosts++;
	buf_reset(&f->piece);
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct framing *f = p->data;
	f->req = request_new();
	f->last = LAST_NONE;
	f->in_body = 0;
	f->hosts = 0;
	f->headers_cap = 0;
	buf_reset(&f->piece);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct framing *f = p->data;
	if (f->piece.len + n > FRAMING_MAX_TARGET)
		return refuse(f, "uri-too-long", "the request target is longer than 32 KiB");
	buf_add(&f->piece, at, n);
	f->last = LAST_TARGET;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct framing *f = p->data;
	if (f->last != LAST_NAME) {
		if (commit(f))
			return -1;
		f->name_len = 0;
	}
	buf_add(&f->piece, at, n);
	f->name_len += n;
	f->last = LAST_NAME;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct framing *f = p->data;
	/* A second value piece that does not continue a piece cut by the end of
	 * the input is a folded line (obs-fold). */
	if (f->last == LAST_VALUE && !f->cut)
		return refuse(f, "bad-request", "folded header lines (obs-fold) are not accepted");
	buf_add(&f->piece, at, n);
	f->last = LAST_VALUE;
	f->cut = at + n == f->input_end;
	return 0;
}

static int host_valid(const char *v)
{
	for (; *v; v++)
		if (!(is_token_char((unsigned char)*v) || strchr(":[]", *v)) || strchr("/\\@", *v))
			return 0;
	return 1;
}

static int on_headers_complete(http_parser *p)
{
	struct framing *f = p->data;
	struct request *req = f->req;
	if (commit(f))
		return -1;
	f->in_body = 1;
	if (p->http_major != 1 || p->http_minor > 1)
		return refuse(f, "http-version-not-supported", "only HTTP/1.0 and HTTP/1.1 are served");
	req->http_minor = p->http_minor;
	req->method_name = http_method_str((enum http_method)p->method);
	req->method = router_method_parse(req->method_name);
	if (set_target(f, req, req->raw_target ? req->raw_target : "", req->raw_target ? strlen(req->raw_target) : 0))
		return -1;
	if (f->hosts > 1)
		return refuse(f, "bad-request", "the request has more than one Host header");
	if (p->http_minor == 1 && f->hosts == 0)
		return refuse(f, "bad-request", "an HTTP/1.1 request must have a Host header");
	const char *host = request_header(req, "Host");
	if (host && !host_valid(host))
		return refuse(f, "bad-request", "the Host header is not a valid host");
	req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	int has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
	if (p->content_length != ULLONG_MAX && p->content_length > f->max_body) {
		req->body_too_large = 1; /* answered before the body is read */
		f->paused_head = 1;
		http_parser_pause(p, 1);
		return 0;
	}
	const char *expect = request_header(req, "Expect");
	if (expect) {
		if (strcasecmp(expect, "100-continue"))
			return refuse(f, "expectation-failed", "the only expectation served is 100-continue");
		if (has_body && req->http_minor == 1) {
			req->expect_continue = 1;
			f->paused_head = 1;
			http_parser_pause(p, 1);
		}
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct framing *f = p->data;
	struct request *req = f->req;
	if (req->body.len + n > f->max_body) {
		/* a chunked body past the limit: answered now */
		req->body_too_large = 1;
		buf_release(&req->body);
		f->paused_head = 1;
		http_parser_pause(p, 1);
		return 0;
	}
	buf_add(&req->body, at, n);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	http_parser_pause(p, 1);
	return 0;
}

void framing_setup(void)
{
	http_parser_set_max_header_size(FRAMING_MAX_HEAD);
	memset(&settings, 0, sizeof(settings));
	settings.on_message_begin = on_message_begin;
	settings.on_url = on_url;
	settings.on_header_field = on_header_field;
	settings.on_header_value = on_header_value;
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
	settings.on_message_complete = on_message_complete;
}

void framing_init(struct framing *f, size_t max_body)
{
	memset(f, 0, sizeof(*f));
	http_parser_init(&f->parser, HTTP_REQUEST);
	f->parser.data = f;
	f->max_body = max_body;
	buf_init(&f->piece);
}

void framing_release(struct framing *f)
{
	if (f->req)
		request_free(f->req);
	f->req = NULL;
	buf_release(&f->piece);
}

struct request *framing_take(struct framing *f)
{
	struct request *req = f->req;
	f->req = NULL;
	buf_release(&f->piece);
	return req;
}

int framing_busy(const struct framing *f)
{
	return f->req != NULL;
}

static void error_of(struct framing *f, enum http_errno e, const char **slug, const char **detail)
{
	*slug = "bad-request";
	switch (e) {
	case HPE_CB_message_begin:
	case HPE_CB_url:
	case HPE_CB_header_field:
	case HPE_CB_header_value:
	case HPE_CB_headers_complete:
	case HPE_CB_body:
	case HPE_CB_message_complete:
		*slug = f->error_slug;
		*detail = f->error_detail;
		break;
	case HPE_HEADER_OVERFLOW:
		*slug = "header-too-large";
		*detail = "the request head is longer than 64 KiB";
		break;
	case HPE_INVALID_VERSION:
		/* not a version at all ("HTTP/1.1x", "http/1.1"): a malformed request
		 * line; a well-formed other version (HTTP/2.0) is 505 on the head */
		*slug = "bad-request";
		*detail = "the request line does not end with a valid HTTP version";
		break;
	case HPE_INVALID_METHOD:
		*detail = "the request line does not start with an HTTP method";
		break;
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		*detail = "Content-Length must appear once, and never with Transfer-Encoding";
		break;
	case HPE_INVALID_CONTENT_LENGTH:
		*detail = "Content-Length must be a decimal number of bytes";
		break;
	case HPE_INVALID_TRANSFER_ENCODING:
		*detail = "the only transfer coding accepted is chunked, last";
		break;
	case HPE_INVALID_CHUNK_SIZE:
		*detail = "a chunk size is not a hexadecimal number";
		break;
	default:
		*detail = http_errno_description(e);
		break;
	}
}

enum framing_event framing_feed(struct framing *f, const char *data, size_t len, size_t *used)
{
	f->input_end = data + len;
	f->error_slug = "bad-request";
	size_t n = len ? http_parser_execute(&f->parser, &settings, data, len) : 0;
	*used = n;
	enum http_errno e = HTTP_PARSER_ERRNO(&f->parser);
	if (e == HPE_OK)
		return FRAMING_MORE;
	if (e == HPE_PAUSED) {
		http_parser_pause(&f->parser, 0);
		if (f->paused_head) {
			f->paused_head = 0;
			return FRAMING_HEAD;
		}
		return FRAMING_REQUEST;
	}
	*used = len;
	if (!f->req)
		f->req = request_new();
	const char *slug, *detail = NULL;
	error_of(f, e, &slug, &detail);
	struct api_error err;
	api_fail(&err, slug, "%s", detail);
	f->req->keep_alive = 0;
	reply_problem(f->req, &err);
	return FRAMING_ERROR;
}
