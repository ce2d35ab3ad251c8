#ifndef TRANSITD_DOMAIN_PAGING_H
#define TRANSITD_DOMAIN_PAGING_H
/*
 * Keyset paging, in one SQL shape for every list (?limit=, ?cursor=). A
 * statement reads one row more than asked: that row tells whether a next
 * page exists, and the cursor to it is the key of the last row shown. The
 * pieces are string literals, pasted into the statement at compile time:
 *
 *   "WITH " PAGE_NEWEST_FIRST("SELECT * FROM recharges WHERE card_id = $1", "recharge_id", "$2", "$3")
 *   " SELECT json_build_object('card_id', c.card_id, "
 *   PAGE_MEMBERS_NEWEST_FIRST("history", "json_build_object(...)", "recharge_id", "$3")
 *   ")::text FROM cards c WHERE c.card_id = $1"
 *
 * rows:   a SELECT of the list's rows with every filter but the cursor
 *         (its columns are those the element expression reads from s);
 * key:    their unique id column, the order of the list;
 * cursor: the parameter of the cursor: 0 for the first page, else the key
 *         the previous page answered as next_cursor;
 * limit:  the parameter of the page size.
 *
 * PAGE_* defines the CTEs `page` (up to limit + 1 rows) and `shown` (the
 * page); PAGE_MEMBERS_* the two members of the document: name, the array
 * of elem over the rows s of the page, in order, and next_cursor (the
 * key as text, or null on the last page).
 */

/* Newest first: keys below the cursor (0: from the newest). */
#define PAGE_NEWEST_FIRST(rows, key, cursor, limit) \
	PAGE_CTES_(rows, "(" cursor "::bigint = 0 OR " key " < " cursor ")", key, "DESC", limit)
#define PAGE_MEMBERS_NEWEST_FIRST(name, elem, key, limit) PAGE_MEMBERS_(name, elem, key, "DESC", "min", limit)

/* Oldest first: keys above the cursor (0: from the oldest). */
#define PAGE_OLDEST_FIRST(rows, key, cursor, limit) \
	PAGE_CTES_(rows, key " > " cursor "::bigint", key, "ASC", limit)
#define PAGE_MEMBERS_OLDEST_FIRST(name, elem, key, limit) PAGE_MEMBERS_(name, elem, key, "ASC", "max", limit)

#define PAGE_CTES_(rows, after_cursor, key, order, limit)                                                        \
	"page AS (SELECT * FROM (" rows ") r WHERE " after_cursor " ORDER BY " key " " order " LIMIT " limit      \
	"::int + 1), shown AS (SELECT * FROM page ORDER BY " key " " order " LIMIT " limit ")"
#define PAGE_MEMBERS_(name, elem, key, order, last, limit)                                                       \
	"'" name "', coalesce((SELECT json_agg(" elem " ORDER BY s." key " " order ") FROM shown s), '[]'),"       \
	" 'next_cursor', CASE WHEN (SELECT count(*) FROM page) > " limit " THEN (SELECT " last "(" key              \
	") FROM shown)::text END"

#endif
