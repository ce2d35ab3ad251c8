#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	min_level = level;
}

int log_enabled(enum log_level level)
{
	return level >= min_level;
}

int log_begin(struct buf *b, enum log_level level, const char *msg)
{
	if (!log_enabled(level))
		return 0;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	buf_addf(b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec / 1000000, level_names[level]);
	buf_add_json_str(b, msg);
	return 1;
}

void log_str(struct buf *b, const char *key, const char *value)
{
	buf_addch(b, ',');
	buf_add_json_str(b, key);
	buf_addch(b, ':');
	buf_add_json_str(b, value);
}

void log_int(struct buf *b, const char *key, int64_t value)
{
	buf_addch(b, ',');
	buf_add_json_str(b, key);
	buf_addch(b, ':');
	buf_add_i64(b, value);
}

void log_end(struct buf *b)
{
	buf_adds(b, "}\n");
	ssize_t off = 0;
	while ((size_t)off < b->len) {
		ssize_t n = write(STDERR_FILENO, b->ptr + off, b->len - (size_t)off);
		if (n <= 0)
			break;
		off += n;
	}
	buf_release(b);
}

void log_security(const struct log_subject *who, const char *event, const char *detail)
{
	struct buf line = BUF_INIT;
	if (!log_begin(&line, LOG_WARN, "security"))
		return;
	log_str(&line, "event", event);
	log_str(&line, "request_id", who->request_id);
	log_str(&line, "client", who->client);
	log_str(&line, "path", who->path);
	if (who->user_id)
		log_int(&line, "user_id", who->user_id);
	if (detail)
		log_str(&line, "detail", detail);
	log_end(&line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	struct buf b = BUF_INIT, msg = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (log_begin(&b, level, msg.ptr))
		log_end(&b);
	buf_release(&msg);
}
