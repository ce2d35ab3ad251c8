#ifndef TRANSITD_API_H
#define TRANSITD_API_H
/*
 * The HTTP resources: one file per resource, each parsing and validating its
 * input, calling the domain, and answering. The route table (routes.c)
 * binds them to methods and paths.
 *
 * Every handler has one shape: a struct api_error, every failure sent to
 * one `fail:` exit that renders it (reply_problem), success returning
 * before it. A function whose name ends in _or_reply has already answered
 * the client when it fails; its caller only returns.
 */
#include <stddef.h>

#include "../core/config.h"
#include "../http/http.h"

extern const struct route api_routes[];
extern const size_t api_routes_count;

/* Start-up: what the resources need before the first request. */
void api_init(const struct config *cfg);
/* Loads the static pages and assets from cfg->web_dir; missing ones answer 404. */
void static_load(const char *web_dir);
void static_free(void);

/* health.c */
void health_live(struct request *req, struct worker *w);
void health_status(struct request *req, struct worker *w);
void health_db(struct request *req, struct worker *w);
void health_cache(struct request *req, struct worker *w);
void health_queue(struct request *req, struct worker *w);
void health_ready(struct request *req, struct worker *w);
void metrics_get(struct request *req, struct worker *w);

/* static.c */
void static_get(struct request *req, struct worker *w);

/* operations.c */
void operation_get_one(struct request *req, struct worker *w);

/* network.c */
extern struct cache_family family_localities, family_stations, family_station, family_arrivals,
	family_alerts, family_routes, family_route;
void localities_list(struct request *req, struct worker *w);
void stations_list(struct request *req, struct worker *w);
void station_get(struct request *req, struct worker *w);
void station_arrivals(struct request *req, struct worker *w);
void station_alerts(struct request *req, struct worker *w);
void routes_list(struct request *req, struct worker *w);
void route_get(struct request *req, struct worker *w);
void alerts_create(struct request *req, struct worker *w);
void alerts_end(struct request *req, struct worker *w);

/* cards.c */
extern struct cache_family family_card, family_card_balance, family_card_history;
void cards_api_configure(const struct config *cfg);
void cards_create(struct request *req, struct worker *w);
void card_get_one(struct request *req, struct worker *w);
void card_balance_get(struct request *req, struct worker *w);
void card_history_get(struct request *req, struct worker *w);
void card_transactions_get(struct request *req, struct worker *w);
void cards_recharge(struct request *req, struct worker *w);
int cards_recharge_check(struct request *req, struct worker *w, struct api_error *e); /* route_check */
void card_block(struct request *req, struct worker *w);
void card_unblock(struct request *req, struct worker *w);
/* Riders reach only their own cards: 0 for staff and for the owner, -1 with
 * e 404 (as for a card that does not exist) otherwise. May query the owner. */
int card_access_check(struct request *req, struct worker *w, int64_t card_id, struct api_error *e);
/* What changed on a card, for card_cache_keys: its balance always (and so
 * its document), its recharges, its status or owner (who may read it, and
 * the active-user count). */
enum card_change { CARD_MONEY = 0, CARD_RECHARGED = 1, CARD_STATUS = 2 };
#define CARD_CACHE_KEYS_MAX 5
/* The cached reads (keys without prefix) a change of card_id makes stale:
 * fills keys (CARD_CACHE_KEYS_MAX) and returns how many. */
size_t card_cache_keys(struct arena *a, int64_t card_id, unsigned what, const char **keys);
/* After a committed change of card_id: drops those reads in Redis and in
 * the memory of every instance (card_cache_keys). */
void card_cache_invalidate(struct request *req, struct worker *w, int64_t card_id, unsigned what);

/* payments.c */
void payments_topup(struct request *req, struct worker *w);
void payments_list(struct request *req, struct worker *w);
void payment_get_one(struct request *req, struct worker *w);
void payments_webhook(struct request *req, struct worker *w);
void payment_sandbox_sign(struct request *req, struct worker *w);

/* auth.c */
void auth_api_configure(const struct config *cfg);
void auth_register_prepare(struct request *req, struct worker *w);
void auth_register(struct request *req, struct worker *w);
void auth_login(struct request *req, struct worker *w);
void auth_refresh(struct request *req, struct worker *w);
void auth_logout(struct request *req, struct worker *w);

/* users.c */
void users_me(struct request *req, struct worker *w);
void users_list(struct request *req, struct worker *w);
void users_latest(struct request *req, struct worker *w);
void users_set_role(struct request *req, struct worker *w);

/* trips.c */
extern struct cache_family family_trip, family_fares;
void trips_start(struct request *req, struct worker *w);
void trips_end(struct request *req, struct worker *w);
int trips_start_check(struct request *req, struct worker *w, struct api_error *e); /* route_check */
int trips_end_check(struct request *req, struct worker *w, struct api_error *e);   /* route_check */
void trip_get_one(struct request *req, struct worker *w);
void trips_of_card(struct request *req, struct worker *w);
void trips_of_user(struct request *req, struct worker *w);
void fares_get(struct request *req, struct worker *w);

/* analytics.c */
extern struct cache_family family_trips_total, family_trips_localities, family_revenue, family_revenue_localities,
	family_users_active, family_users_count, family_top_destinations, family_trips_daily;
void analytics_trips_total_get(struct request *req, struct worker *w);
void analytics_trips_localities_get(struct request *req, struct worker *w);
void analytics_revenue_get(struct request *req, struct worker *w);
void analytics_revenue_localities_get(struct request *req, struct worker *w);
void analytics_trips_daily_get(struct request *req, struct worker *w);
void analytics_top_destinations_get(struct request *req, struct worker *w);
void users_count(struct request *req, struct worker *w);
void users_active_count(struct request *req, struct worker *w);
void cache_stats_get(struct request *req, struct worker *w);
void cache_clear_post(struct request *req, struct worker *w);

/* rail.c */
extern struct cache_family family_rail_trains, family_rail_runs, family_rail_seats;
void rail_trains_get(struct request *req, struct worker *w);
void rail_runs_get(struct request *req, struct worker *w);
void rail_seats_get(struct request *req, struct worker *w);
void rail_runs_create(struct request *req, struct worker *w);
void rail_bookings_create(struct request *req, struct worker *w);
int rail_bookings_check(struct request *req, struct worker *w, struct api_error *e); /* route_check */
void rail_bookings_batch(struct request **reqs, int n, struct worker *w);
void rail_bookings_list(struct request *req, struct worker *w);
void rail_booking_get_one(struct request *req, struct worker *w);
void rail_booking_cancel(struct request *req, struct worker *w);

/* The families every trip write makes stale (their keys have no id). */
extern const struct cache_family *const analytics_trip_families[];
extern const size_t analytics_trip_families_count;

#endif
