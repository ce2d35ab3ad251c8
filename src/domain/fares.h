#ifndef TRANSITD_FARES_H
#define TRANSITD_FARES_H
/*
 * The fare engine: a pure function from the rules in force (read from the
 * fare tables), the card and its previous boarding, to what this boarding
 * costs. No I/O, so every rule is unit-tested in isolation.
 */
#include <stdint.h>

struct fare_rule {
	int64_t fare;             /* full fare of a boarding of this route type */
	int has_transfer;         /* a transfer rule applies from the previous leg */
	int64_t transfer_fare;    /* cost of such a transfer */
	int64_t duration_limit_s; /* from the journey's first paid boarding */
	int transfer_count;       /* transfers per journey */
	int personalized_only;
	int max_credit_trips;     /* for this card's kind */
};

struct fare_card {
	int personalized;
	int64_t balance;
	int credit_trips_used;     /* on this card */
	int person_credit_trips;   /* on every card of its owner, this one included (credit is
				    * the person's, so many cards do not mean more credit) */
};

struct fare_previous {
	int exists;
	int64_t route_id;
	int64_t journey_start;    /* unix seconds */
	int journey_transfers;
};

struct fare_decision {
	int allowed;              /* 0: not enough balance or credit */
	int64_t fare;
	int is_transfer;
	int on_credit;
	int64_t journey_start;
	int journey_transfers;
	int64_t new_balance;
	int new_credit_trips;
};

/* Decides the boarding of route_id at now (unix seconds). Always fills *d.
 * Invariants, whatever the input: the fare is never negative (a rule with a
 * negative amount refuses the boarding), a journey never counts more than
 * transfer_count transfers, and no arithmetic overflows (a boarding whose
 * balance would leave 64 bits is refused). */
void fare_decide(const struct fare_rule *rule, const struct fare_card *card, const struct fare_previous *prev,
		 int64_t route_id, int64_t now, struct fare_decision *d);

#endif
