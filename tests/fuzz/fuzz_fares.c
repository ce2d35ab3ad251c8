/* libFuzzer harness: the fare engine over any rules, card and previous
 * boarding. Invariants: the fare is never negative; a journey never counts
 * more transfers than the rule allows; a refused boarding changes nothing;
 * an allowed one moves the balance by exactly the fare; credit never goes
 * past the rule's number of trips. UBSan catches any overflow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/fares.h"

struct reader {
	const uint8_t *p;
	size_t left;
};

static int64_t take(struct reader *r, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++) {
		v = (v << 8) | (r->left ? *r->p : 0);
		if (r->left) {
			r->p++;
			r->left--;
		}
	}
	if (bytes == 8)
		return (int64_t)v;
	/* sign-extend smaller reads so negatives come up often */
	int shift = 64 - 8 * bytes;
	return (int64_t)(v << shift) >> shift;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	struct fare_rule rule;
	struct fare_card card;
	struct fare_previous prev;
	rule.fare = take(&r, 8);
	rule.has_transfer = (int)take(&r, 1) & 1;
	rule.transfer_fare = take(&r, 8);
	rule.duration_limit_s = take(&r, 8);
	rule.transfer_count = (int)take(&r, 2);
	rule.personalized_only = (int)take(&r, 1) & 1;
	rule.max_credit_trips = (int)take(&r, 2);
	card.personalized = (int)take(&r, 1) & 1;
	card.balance = take(&r, 8);
	card.credit_trips_used = (int)take(&r, 2);
	card.person_credit_trips = (int)take(&r, 2);
	prev.exists = (int)take(&r, 1) & 1;
	prev.route_id = take(&r, 4);
	prev.journey_start = take(&r, 8);
	prev.journey_transfers = (int)take(&r, 2);
	int64_t route = take(&r, 4), now = take(&r, 8);

	struct fare_decision d;
	memset(&d, 0xa5, sizeof(d));
	fare_decide(&rule, &card, &prev, route, now, &d);
	if (d.fare < 0)
		abort();
	if (d.is_transfer ? d.journey_transfers > rule.transfer_count : d.journey_transfers != 0)
		abort();
	if (!d.allowed && (d.new_balance != card.balance || d.new_credit_trips != card.credit_trips_used || d.on_credit))
		abort();
	if (d.allowed && d.new_balance != card.balance - d.fare)
		abort();
	if (d.on_credit && (d.new_credit_trips > rule.max_credit_trips || card.person_credit_trips >= rule.max_credit_trips))
		abort();
	if (d.allowed && !d.on_credit && d.fare > 0 && d.new_balance < 0)
		abort();
	return 0;
}
