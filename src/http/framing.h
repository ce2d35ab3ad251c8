#ifndef TRANSITD_FRAMING_H
#define TRANSITD_FRAMING_H
/*
 * HTTP/1.1 request framing: bytes in, requests out, on the http-parser
 * state machine (Debian's libhttp-parser) with the stricter rules a server
 * that holds money needs (RFC 9112):
 *
 *   - exactly one Host in HTTP/1.1 (none or two → 400);
 *   - Content-Length together with Transfer-Encoding, a repeated or an
 *     invalid Content-Length, a transfer coding other than chunked → 400;
 *   - obs-fold (a header line starting with a space) and whitespace before
 *     the colon → 400;
 *   - a version other than HTTP/1.0 and HTTP/1.1 → 505;
 *   - a head over FRAMING_MAX_HEAD bytes or FRAMING_MAX_HEADERS fields → 431,
 *     a request target over FRAMING_MAX_TARGET bytes → 414.
 *
 * Every error ends the connection: after a framing error the next byte of
 * the stream cannot be trusted to start a request.
 *
 * Input may arrive in any pieces. framing_feed stops after each event, so
 * pipelined requests come out one at a time and in order.
 */
#include <http_parser.h>
#include <stddef.h>

#include "../core/buf.h"
#include "http.h"

#define FRAMING_MAX_HEAD (64 * 1024)
#define FRAMING_MAX_TARGET (32 * 1024)
#define FRAMING_MAX_HEADERS 100

enum framing_event {
	FRAMING_MORE,    /* everything consumed; more input needed */
	FRAMING_HEAD,    /* headers complete and the request needs attention before its body:
			    an Expect header, or a declared body over the limit */
	FRAMING_REQUEST, /* a whole request is in f->req */
	FRAMING_ERROR,   /* f->req holds the error answer's request; close after answering */
};

struct framing {
	http_parser parser;
	struct request *req;  /* the request being read, NULL between requests */
	size_t max_body;
	struct buf piece;     /* the element being read: the target, or a header name then its value */
	size_t name_len;      /* bytes of piece that are the header name */
	unsigned char last;   /* what the previous callback read: 0, target, name or value */
	unsigned char cut;    /* the previous value piece ended at the end of the input */
	unsigned char paused_head;
	unsigned char in_body; /* headers done: further fields are chunked trailers */
	int hosts;            /* Host fields seen */
	int headers_cap;      /* slots in req->headers */
	const char *input_end;
	const char *error_slug; /* set by a callback that refused the input */
	const char *error_detail;
};

/* Once, before any framing: sets http-parser's (process-wide) head limit. */
void framing_setup(void);

void framing_init(struct framing *f, size_t max_body);
/* Frees what the framing holds, including an unfinished request. */
void framing_release(struct framing *f);

/*
 * Parses from data; *used receives the bytes consumed. On FRAMING_REQUEST,
 * FRAMING_HEAD and FRAMING_ERROR the caller owns f->req from then on except
 * after FRAMING_HEAD, where it stays with the framing until the request is
 * complete (the caller may answer it early instead, then closes). On
 * FRAMING_ERROR, f->req->res already holds the problem answer.
 */
enum framing_event framing_feed(struct framing *f, const char *data, size_t len, size_t *used);

/* Takes the current request from the framing (after FRAMING_REQUEST or an early answer). */
struct request *framing_take(struct framing *f);

/* True when a request has started but is not complete. */
int framing_busy(const struct framing *f);

/* Percent-decodes s[0..n) into the arena (invalid escapes stay as they
 * are); plus_is_space for query components. *out_len is the decoded length,
 * which is past the first NUL when a %00 was decoded. */
char *framing_decode(struct arena *a, const char *s, size_t n, int plus_is_space, size_t *out_len);

#endif
