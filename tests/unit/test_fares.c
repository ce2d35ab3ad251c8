/* Unit tests for the fare engine, src/domain/fares.{h,c}: fare_decide is a
 * pure function, so every rule is a row of a table (rule in force, card,
 * previous boarding, now -> the whole decision). Each row runs as its own
 * named cmocka test.
 *
 * Not the engine's job (so not tested here): repaying credit. A recharge
 * (src/domain/cards.c, card_recharge) adds to the balance and resets
 * credit_trips_used to 0 once the balance is >= 0 again; the engine only
 * reads credit_trips_used and never resets it (see "stale credit count"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "domain/fares.h"

#define FARE 3200
#define WINDOW 7500 /* 125 minutes */
#define NOW 1764097573 /* 2025-11-25T19:06:13Z */
#define MIN 60

/* Bogotá 2025 as seeded by db/migrations/0004_trips.sql: 3,200 COP a
 * boarding, two free transfers within 125 minutes for personalised cards,
 * two trips on credit for personalised cards and none for anonymous ones. */
#define BOGOTA_PERSONAL { FARE, 1, 0, WINDOW, 2, 1, 2 }
#define BOGOTA_ANON { FARE, 1, 0, WINDOW, 2, 1, 0 }

#define PERSONAL(balance, credit) { 1, balance, credit, credit }
/* A card of a person whose cards together used `person` credit trips. */
#define PERSON(balance, credit, person) { 1, balance, credit, person }
#define ANON(balance) { 0, balance, 0, 0 }
#define NO_PREVIOUS { 0, 0, 0, 0 }
/* The previous boarding was on route, its journey began ago seconds before NOW. */
#define PREVIOUS(route, ago, transfers) { 1, route, NOW - (ago), transfers }

struct expect {
	int allowed;
	int64_t fare;
	int is_transfer;
	int on_credit;
	int64_t journey_start;
	int journey_transfers;
	int64_t new_balance;
	int new_credit_trips;
};

struct fare_case {
	const char *name;
	struct fare_rule rule;
	struct fare_card card;
	struct fare_previous prev;
	int64_t route_id;
	int64_t now;
	struct expect want;
};

static const struct fare_case cases[] = {
	/* --- boarding and transfers --------------------------------------- */
	{ "first boarding pays the full fare and starts a journey",
	  BOGOTA_PERSONAL, PERSONAL(10000, 0), NO_PREVIOUS, 3, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 10000 - FARE, 0 } },
	{ "1st transfer onto another route is free, the journey keeps its start",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(3, 30 * MIN, 0), 17, NOW,
	  { 1, 0, 1, 0, NOW - 30 * MIN, 1, 6800, 0 } },
	{ "2nd transfer is free too",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(17, 60 * MIN, 1), 9, NOW,
	  { 1, 0, 1, 0, NOW - 60 * MIN, 2, 6800, 0 } },
	{ "3rd transfer is paid and starts a new journey",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(9, 70 * MIN, 2), 3, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 6800 - FARE, 0 } },
	{ "window edge 124:59 is a transfer",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(3, WINDOW - 1, 0), 17, NOW,
	  { 1, 0, 1, 0, NOW - (WINDOW - 1), 1, 6800, 0 } },
	{ "window edge 125:00 is a transfer (the limit is inclusive)",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(3, WINDOW, 0), 17, NOW,
	  { 1, 0, 1, 0, NOW - WINDOW, 1, 6800, 0 } },
	{ "window edge 125:01 is paid, a new journey",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(3, WINDOW + 1, 0), 17, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 6800 - FARE, 0 } },
	{ "window measured from the journey's first paid boarding, not the last leg",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(17, WINDOW + 1, 1), 9, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 6800 - FARE, 0 } },
	{ "the same route again is paid (a new trip, not a transfer)",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(3, 10 * MIN, 0), 3, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 6800 - FARE, 0 } },
	{ "a boarding before the journey start (clock skew) is paid",
	  BOGOTA_PERSONAL, PERSONAL(6800, 0), PREVIOUS(3, -5, 0), 17, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 6800 - FARE, 0 } },
	{ "no transfer rule between the leg groups: paid",
	  { FARE, 0, 0, 0, 0, 1, 2 }, PERSONAL(6800, 0), PREVIOUS(3, 10 * MIN, 0), 17, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 6800 - FARE, 0 } },
	{ "a transfer rule with a price charges that price",
	  { FARE, 1, 500, WINDOW, 2, 1, 2 }, PERSONAL(6800, 0), PREVIOUS(3, 10 * MIN, 0), 17, NOW,
	  { 1, 500, 1, 0, NOW - 10 * MIN, 1, 6300, 0 } },

	/* --- anonymous cards ---------------------------------------------- */
	{ "anonymous card pays the first boarding",
	  BOGOTA_ANON, ANON(10000), NO_PREVIOUS, 3, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 10000 - FARE, 0 } },
	{ "anonymous card pays every boarding (no transfer)",
	  BOGOTA_ANON, ANON(6800), PREVIOUS(3, 10 * MIN, 0), 17, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 6800 - FARE, 0 } },
	{ "personalized_only=false lets an anonymous card transfer",
	  { FARE, 1, 0, WINDOW, 2, 0, 0 }, ANON(6800), PREVIOUS(3, 10 * MIN, 0), 17, NOW,
	  { 1, 0, 1, 0, NOW - 10 * MIN, 1, 6800, 0 } },

	/* --- credit --------------------------------------------------------- */
	{ "credit trip 1 from balance 0",
	  BOGOTA_PERSONAL, PERSONAL(0, 0), NO_PREVIOUS, 3, NOW,
	  { 1, FARE, 0, 1, NOW, 0, -FARE, 1 } },
	{ "credit trip 2 from balance -3200",
	  BOGOTA_PERSONAL, PERSONAL(-FARE, 1), PREVIOUS(3, 10 * MIN, 0), 3, NOW,
	  { 1, FARE, 0, 1, NOW, 0, -2 * FARE, 2 } },
	{ "3rd credit trip from -6400 is refused, balance unchanged",
	  BOGOTA_PERSONAL, PERSONAL(-2 * FARE, 2), PREVIOUS(3, 10 * MIN, 0), 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, -2 * FARE, 2 } },
	{ "credit trip 1 from balance 1000",
	  BOGOTA_PERSONAL, PERSONAL(1000, 0), NO_PREVIOUS, 3, NOW,
	  { 1, FARE, 0, 1, NOW, 0, 1000 - FARE, 1 } },
	{ "credit trip 2 from balance -2200",
	  BOGOTA_PERSONAL, PERSONAL(1000 - FARE, 1), PREVIOUS(3, 10 * MIN, 0), 3, NOW,
	  { 1, FARE, 0, 1, NOW, 0, 1000 - 2 * FARE, 2 } },
	{ "3rd credit trip from -5400 is refused (two credit trips used)",
	  BOGOTA_PERSONAL, PERSONAL(1000 - 2 * FARE, 2), PREVIOUS(3, 10 * MIN, 0), 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, 1000 - 2 * FARE, 2 } },
	{ "credit refused when it would go below two fares",
	  BOGOTA_PERSONAL, PERSONAL(-5000, 1), NO_PREVIOUS, 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, -5000, 1 } },
	{ "a balance of exactly one fare pays without credit",
	  BOGOTA_PERSONAL, PERSONAL(FARE, 0), NO_PREVIOUS, 3, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 0, 0 } },
	{ "anonymous card with 0: max_credit_trips=0 refuses",
	  BOGOTA_ANON, ANON(0), NO_PREVIOUS, 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, 0, 0 } },
	{ "anonymous card with 1000: max_credit_trips=0 refuses",
	  BOGOTA_ANON, ANON(1000), NO_PREVIOUS, 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, 1000, 0 } },
	{ "personalised card with max_credit_trips=0 refuses",
	  { FARE, 1, 0, WINDOW, 2, 1, 0 }, PERSONAL(0, 0), NO_PREVIOUS, 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, 0, 0 } },
	{ "a free transfer is allowed with a negative balance and no credit left",
	  BOGOTA_PERSONAL, PERSONAL(-2 * FARE, 2), PREVIOUS(3, 10 * MIN, 0), 17, NOW,
	  { 1, 0, 1, 0, NOW - 10 * MIN, 1, -2 * FARE, 2 } },
	{ "same route within the window with no credit left is refused",
	  BOGOTA_PERSONAL, PERSONAL(-2 * FARE, 2), PREVIOUS(17, 10 * MIN, 1), 17, NOW,
	  { 0, FARE, 0, 0, NOW, 0, -2 * FARE, 2 } },
	/* Repayment is the recharge's job: the engine never resets the count. */
	{ "stale credit count with a positive balance: paid normally, count kept",
	  BOGOTA_PERSONAL, PERSONAL(5000, 2), NO_PREVIOUS, 3, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 5000 - FARE, 2 } },
	/* --- credit is the person's (issue 14) ----------------------------- */
	{ "a new card of a person whose other cards used the credit gets none",
	  BOGOTA_PERSONAL, PERSON(0, 0, 2), NO_PREVIOUS, 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, 0, 0 } },
	{ "a person with one credit trip left may take it on any card",
	  BOGOTA_PERSONAL, PERSON(0, 0, 1), NO_PREVIOUS, 3, NOW,
	  { 1, FARE, 0, 1, NOW, 0, -FARE, 1 } },
	/* --- hostile rules and values: refused, never wrapped -------------- */
	{ "a negative fare in the rules refuses the boarding",
	  { -5, 1, 0, WINDOW, 2, 1, 2 }, PERSONAL(10000, 0), NO_PREVIOUS, 3, NOW,
	  { 0, 0, 0, 0, NOW, 0, 10000, 0 } },
	{ "a balance at the bottom of 64 bits is refused, not wrapped",
	  BOGOTA_PERSONAL, PERSONAL(INT64_MIN, 0), NO_PREVIOUS, 3, NOW,
	  { 0, FARE, 0, 0, NOW, 0, INT64_MIN, 0 } },
	{ "a journey start far in the past does not overflow the window check",
	  BOGOTA_PERSONAL, PERSONAL(10000, 0), { 1, 3, INT64_MIN, 0 }, 17, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 10000 - FARE, 0 } },
	{ "a negative transfer count of the previous leg is no transfer",
	  BOGOTA_PERSONAL, PERSONAL(10000, 0), PREVIOUS(3, MIN, -7), 17, NOW,
	  { 1, FARE, 0, 0, NOW, 0, 10000 - FARE, 0 } },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void run_case(void **state)
{
	const struct fare_case *c = *state;
	struct fare_decision d;
	memset(&d, 0xa5, sizeof(d)); /* every field must be written */
	fare_decide(&c->rule, &c->card, &c->prev, c->route_id, c->now, &d);
	const struct expect *w = &c->want;
	int ok = d.allowed == w->allowed && d.fare == w->fare && d.is_transfer == w->is_transfer &&
		 d.on_credit == w->on_credit && d.journey_start == w->journey_start &&
		 d.journey_transfers == w->journey_transfers && d.new_balance == w->new_balance &&
		 d.new_credit_trips == w->new_credit_trips;
	if (!ok) {
		print_error("case \"%s\"\n"
			    "  field             want        got\n"
			    "  allowed           %-11d %d\n"
			    "  fare              %-11lld %lld\n"
			    "  is_transfer       %-11d %d\n"
			    "  on_credit         %-11d %d\n"
			    "  journey_start     NOW%+-8lld NOW%+lld\n"
			    "  journey_transfers %-11d %d\n"
			    "  new_balance       %-11lld %lld\n"
			    "  new_credit_trips  %-11d %d\n",
			    c->name, w->allowed, d.allowed, (long long)w->fare, (long long)d.fare, w->is_transfer,
			    d.is_transfer, w->on_credit, d.on_credit, (long long)(w->journey_start - NOW),
			    (long long)(d.journey_start - NOW), w->journey_transfers, d.journey_transfers,
			    (long long)w->new_balance, (long long)d.new_balance, w->new_credit_trips,
			    d.new_credit_trips);
		fail();
	}
}

/* The decision depends only on its inputs: the same call twice agrees, and
 * the inputs are not modified. */
static void test_pure(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCASES; i++) {
		struct fare_case c = cases[i];
		struct fare_decision a, b;
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		fare_decide(&c.rule, &c.card, &c.prev, c.route_id, c.now, &a);
		fare_decide(&c.rule, &c.card, &c.prev, c.route_id, c.now, &b);
		assert_memory_equal(&a, &b, sizeof(a));
		assert_memory_equal(&c, &cases[i], sizeof(c));
	}
}

/* A whole Bogotá day of one personalised card, chaining decisions the way
 * trip_start does (the previous boarding is the last decision). */
static void test_chained_journey(void **state)
{
	(void)state;
	const struct fare_rule rule = BOGOTA_PERSONAL;
	struct fare_card card = PERSONAL(4000, 0);
	struct fare_previous prev = NO_PREVIOUS;
	struct {
		int64_t route, at;
		int64_t fare;
		int transfer, credit, allowed;
		int64_t balance;
	} steps[] = {
		{ 3, NOW, FARE, 0, 0, 1, 800 },                         /* paid */
		{ 17, NOW + 20 * MIN, 0, 1, 0, 1, 800 },                /* 1st transfer */
		{ 9, NOW + 40 * MIN, 0, 1, 0, 1, 800 },                 /* 2nd transfer */
		{ 3, NOW + 60 * MIN, FARE, 0, 1, 1, 800 - FARE },       /* 3rd: paid, credit 1 */
		{ 17, NOW + 60 * MIN + WINDOW, 0, 1, 0, 1, 800 - FARE }, /* edge of the new window */
		{ 17, NOW + 200 * MIN, FARE, 0, 1, 1, 800 - 2 * FARE }, /* same route: credit 2 */
		{ 3, NOW + 500 * MIN, FARE, 0, 0, 0, 800 - 2 * FARE },  /* new journey, no credit */
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct fare_decision d;
		fare_decide(&rule, &card, &prev, steps[i].route, steps[i].at, &d);
		if (d.fare != steps[i].fare || d.is_transfer != steps[i].transfer || d.on_credit != steps[i].credit ||
		    d.allowed != steps[i].allowed || d.new_balance != steps[i].balance) {
			print_error("step %zu: fare %lld transfer %d credit %d allowed %d balance %lld\n", i,
				    (long long)d.fare, d.is_transfer, d.on_credit, d.allowed, (long long)d.new_balance);
			fail();
		}
		if (!d.allowed)
			continue;
		card.balance = d.new_balance;
		card.credit_trips_used = d.new_credit_trips;
		card.person_credit_trips = d.new_credit_trips;
		prev = (struct fare_previous){ 1, steps[i].route, d.journey_start, d.journey_transfers };
	}
}

int main(void)
{
	struct CMUnitTest tests[NCASES + 2];
	for (size_t i = 0; i < NCASES; i++)
		tests[i] = (struct CMUnitTest){ cases[i].name, run_case, NULL, NULL, (void *)&cases[i] };
	tests[NCASES] = (struct CMUnitTest){ "decision is pure", test_pure, NULL, NULL, NULL };
	tests[NCASES + 1] = (struct CMUnitTest){ "chained Bogotá journey", test_chained_journey, NULL, NULL, NULL };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
