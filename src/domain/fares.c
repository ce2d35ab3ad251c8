#include "fares.h"

#include "../core/banned.h"

static void refuse(const struct fare_card *card, struct fare_decision *d)
{
	d->allowed = 0;
	d->on_credit = 0;
	d->new_balance = card->balance;
	d->new_credit_trips = card->credit_trips_used;
}

void fare_decide(const struct fare_rule *rule, const struct fare_card *card, const struct fare_previous *prev,
		 int64_t route_id, int64_t now, struct fare_decision *d)
{
	/* A transfer: within the window of the journey's first paid boarding,
	 * transfers left, onto another route (the same route again is a new trip). */
	int64_t elapsed;
	int transfer = rule->has_transfer && prev->exists && prev->route_id != route_id &&
		       (card->personalized || !rule->personalized_only) && now >= prev->journey_start &&
		       !__builtin_sub_overflow(now, prev->journey_start, &elapsed) &&
		       elapsed <= rule->duration_limit_s && prev->journey_transfers >= 0 &&
		       prev->journey_transfers < rule->transfer_count;

	d->is_transfer = transfer;
	d->fare = transfer ? rule->transfer_fare : rule->fare;
	d->journey_start = transfer ? prev->journey_start : now;
	d->journey_transfers = transfer ? prev->journey_transfers + 1 : 0;
	d->new_credit_trips = card->credit_trips_used;
	d->on_credit = 0;
	d->allowed = 1;
	if (d->fare < 0) { /* a broken rule charges nothing and boards nobody */
		d->fare = 0;
		refuse(card, d);
		return;
	}
	if (__builtin_sub_overflow(card->balance, d->fare, &d->new_balance)) {
		refuse(card, d);
		return;
	}
	if (d->fare == 0 || d->new_balance >= 0)
		return;
	/* On credit: at most max_credit_trips fares below zero, in as many trips,
	 * counted over all the cards of the person. */
	int64_t floor;
	if (card->credit_trips_used >= 0 && card->credit_trips_used < rule->max_credit_trips &&
	    card->person_credit_trips < rule->max_credit_trips &&
	    !__builtin_mul_overflow(-(int64_t)rule->max_credit_trips, d->fare, &floor) && d->new_balance >= floor) {
		d->on_credit = 1;
		d->new_credit_trips = card->credit_trips_used + 1;
		return;
	}
	refuse(card, d);
}
