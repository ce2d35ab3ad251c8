#include "fares.h"

#include "../core/banned.h"

void fare_decide(const struct fare_rule *rule, const struct fare_card *card, const struct fare_previous *prev,
		 int64_t route_id, int64_t now, struct fare_decision *d)
{
	/* A transfer: within the window of the journey's first paid boarding,
	 * transfers left, onto another route (the same route again is a new trip). */
	int transfer = rule->has_transfer && prev->exists && prev->route_id != route_id &&
		       (card->personalized || !rule->personalized_only) && now >= prev->journey_start &&
		       now - prev->journey_start <= rule->duration_limit_s &&
		       prev->journey_transfers < rule->transfer_count;

	d->is_transfer = transfer;
	d->fare = transfer ? rule->transfer_fare : rule->fare;
	d->journey_start = transfer ? prev->journey_start : now;
	d->journey_transfers = transfer ? prev->journey_transfers + 1 : 0;
	d->new_balance = card->balance - d->fare;
	d->new_credit_trips = card->credit_trips_used;
	d->on_credit = 0;
	d->allowed = 1;
	if (d->fare == 0 || d->new_balance >= 0)
		return;
	/* On credit: at most max_credit_trips fares below zero, in as many trips. */
	if (card->credit_trips_used < rule->max_credit_trips &&
	    d->new_balance >= -(int64_t)rule->max_credit_trips * d->fare) {
		d->on_credit = 1;
		d->new_credit_trips = card->credit_trips_used + 1;
		return;
	}
	d->allowed = 0;
	d->new_balance = card->balance;
}
