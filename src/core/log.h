#ifndef TRANSITD_LOG_H
#define TRANSITD_LOG_H
/*
 * JSON lines on stderr, one write(2) per line so concurrent lines never mix.
 *
 *   struct buf b = BUF_INIT;
 *   if (log_begin(&b, LOG_INFO, "request")) {
 *           log_str(&b, "path", path);
 *           log_end(&b);
 *   }
 * log_begin returns 0 (and builds nothing) when the level is filtered out.
 * Never log a password, a token or a secret.
 */
#include <stdint.h>

#include "buf.h"
#include "config.h"

void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
int log_begin(struct buf *b, enum log_level level, const char *msg);
void log_str(struct buf *b, const char *key, const char *value);
void log_int(struct buf *b, const char *key, int64_t value);
void log_end(struct buf *b);

/* Whom a security event concerns: the request it came with and its caller. */
struct log_subject {
	const char *request_id;
	const char *client; /* the client's address */
	const char *path;
	int64_t user_id;    /* the verified caller, 0 when none */
};

/* A warning line "security" with event (failed logins, token reuse, role
 * denials, rate limits), the subject and detail (may be NULL). Never a
 * password or a token in detail. */
void log_security(const struct log_subject *who, const char *event, const char *detail);

/* A line with only a message; for start-up and rare events. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
