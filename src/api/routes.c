/*
 * The route table: every path the server answers, its method, handler and
 * what the dispatcher checks before the handler runs. Aliases of the earlier
 * Travel Recharge API are rows that share a handler.
 */
#include "api.h"
#include "live.h"
#include "params.h"
#include "../core/banned.h"

#define V1 "/api/v1"

/* method, pattern, handler, flags, roles allowed (0 = public), cache family, summary */
#define ROUTE(m, p, h, f, r, c, s) { .method = (m), .pattern = (p), .handler = (h), .flags = (f), .roles = (r), \
				     .cache = (c), .summary = (s) }
/* a POST that may run asynchronously; check: what it verifies before publishing */
#define ASYNC(m, p, h, chk, f, r, s) { .method = (m), .pattern = (p), .handler = (h), .flags = (f) | ROUTE_ASYNC, \
				       .roles = (r), .summary = (s), .check = (chk) }
/* an async card write: writes of one card wait in its lane (http/lanes.h); batch: NULL or how a lane's
 * waiting requests run as one */
#define CARD_WRITE(m, p, h, chk, f, r, s, batch) { .method = (m), .pattern = (p), .handler = (h), \
	.flags = (f) | ROUTE_ASYNC, .roles = (r), .summary = (s), .check = (chk), .lane = request_card_lane, \
	.lane_batch = (batch) }

const struct route api_routes[] = {
	/* health, metrics, docs */
	ROUTE(METHOD_GET, "/health", health_status, ROUTE_INLINE, 0, NULL, "service status"),
	ROUTE(METHOD_GET, V1 "/health", health_status, ROUTE_INLINE, 0, NULL, "service status (alias)"),
	ROUTE(METHOD_GET, "/health/db", health_db, 0, 0, NULL, "database health"),
	ROUTE(METHOD_GET, V1 "/health/db", health_db, 0, 0, NULL, "database health (alias)"),
	ROUTE(METHOD_GET, "/health/cache", health_cache, 0, 0, NULL, "Redis health"),
	ROUTE(METHOD_GET, V1 "/health/cache", health_cache, 0, 0, NULL, "Redis health (alias)"),
	ROUTE(METHOD_GET, "/health/queue", health_queue, 0, 0, NULL, "message broker health"),
	ROUTE(METHOD_GET, V1 "/health/queue", health_queue, 0, 0, NULL, "message broker health (alias)"),
	ROUTE(METHOD_GET, "/livez", health_live, ROUTE_INLINE, 0, NULL, "process alive"),
	ROUTE(METHOD_GET, "/readyz", health_ready, 0, 0, NULL, "database reachable and schema current"),
	ROUTE(METHOD_GET, "/metrics", metrics_get, ROUTE_INLINE, 0, NULL, "Prometheus metrics"),
	ROUTE(METHOD_GET, "/openapi.json", static_get, ROUTE_INLINE, 0, NULL, "OpenAPI document"),
	ROUTE(METHOD_GET, "/docs", static_get, ROUTE_INLINE, 0, NULL, "Swagger UI"),
	ROUTE(METHOD_GET, "/docs/swagger-ui.css", static_get, ROUTE_INLINE, 0, NULL, "Swagger UI asset"),
	ROUTE(METHOD_GET, "/docs/swagger-ui-bundle.js", static_get, ROUTE_INLINE, 0, NULL, "Swagger UI asset"),
	ROUTE(METHOD_GET, "/docs/swagger-ui-standalone-preset.js", static_get, ROUTE_INLINE, 0, NULL, "Swagger UI asset"),
	ROUTE(METHOD_GET, "/docs/favicon-32x32.png", static_get, ROUTE_INLINE, 0, NULL, "Swagger UI asset"),
	ROUTE(METHOD_GET, "/", static_get, ROUTE_INLINE, 0, NULL, "operator console"),
	ROUTE(METHOD_GET, "/console/{*file}", static_get, ROUTE_INLINE, 0, NULL, "operator console files"),
	ROUTE(METHOD_GET, "/vendor/{*file}", static_get, ROUTE_INLINE, 0, NULL, "npm files the console imports"),

	/* network */
	ROUTE(METHOD_GET, V1 "/localities", localities_list, 0, 0, &family_localities, "the 20 localities"),
	ROUTE(METHOD_GET, V1 "/stations", stations_list, 0, 0, &family_stations, "stations, filtered and paged"),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}", station_get, 0, 0, &family_station, "one station and its routes"),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}/arrivals", station_arrivals, 0, 0, &family_arrivals,
	  "arrivals in the next hour"),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}/alerts", station_alerts, 0, 0, &family_alerts, "service alerts"),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}/live", station_live, 0, 0, NULL,
	      "arrivals and alerts as they change (Server-Sent Events)"),
	ROUTE(METHOD_GET, V1 "/routes", routes_list, 0, 0, &family_routes, "routes"),
	ROUTE(METHOD_GET, V1 "/routes/{route_id}", route_get, 0, 0, &family_route, "one route and its ordered stops"),
	ROUTE(METHOD_POST, V1 "/alerts", alerts_create, ROUTE_JSON_BODY, ROLE_ADMIN, NULL, "publish a service alert"),
	ROUTE(METHOD_PATCH, V1 "/alerts/{alert_id}", alerts_end, ROUTE_JSON_BODY, ROLE_ADMIN, NULL, "end an alert"),

	/* auth and users */
	/* the password hash runs first, on the password pool (http/hashpool.h) */
	{ .method = METHOD_POST, .pattern = V1 "/auth/register", .handler = auth_register, .flags = ROUTE_JSON_BODY,
	  .summary = "create a rider account", .prepare = auth_register_prepare },
	ROUTE(METHOD_POST, V1 "/auth/login", auth_login, ROUTE_JSON_BODY, 0, NULL, "log in: access and refresh tokens"),
	ROUTE(METHOD_POST, V1 "/auth/refresh", auth_refresh, ROUTE_JSON_BODY, 0, NULL, "rotate the refresh token"),
	ROUTE(METHOD_POST, V1 "/auth/logout", auth_logout, 0, ROLE_ANY, NULL, "revoke this login's tokens"),
	ROUTE(METHOD_GET, V1 "/users/me", users_me, 0, ROLE_ANY, NULL, "the caller and their cards"),
	ROUTE(METHOD_GET, V1 "/users", users_list, 0, ROLE_ADMIN, NULL, "users, paged"),
	ROUTE(METHOD_GET, V1 "/users/count", users_count, 0, 0, &family_users_count, "number of users"),
	ROUTE(METHOD_GET, V1 "/users/active/count", users_active_count, 0, 0, &family_users_active,
	  "riders who travelled in 30 days (alias)"),
	ROUTE(METHOD_GET, V1 "/users/latest", users_latest, 0, ROLE_ADMIN, NULL, "the newest user"),
	ROUTE(METHOD_PATCH, V1 "/users/{user_id}", users_set_role, ROUTE_JSON_BODY, ROLE_ADMIN, NULL, "change a role"),

	/* asynchronous commands */
	ROUTE(METHOD_GET, V1 "/operations/{operation_id}", operation_get_one, 0, ROLE_ANY, NULL,
	      "an asynchronous command's outcome"),

	/* cards */
	ROUTE(METHOD_POST, V1 "/cards", cards_create, ROUTE_JSON_BODY, ROLE_ANY, NULL, "issue a card"),
	CARD_WRITE(METHOD_POST, V1 "/cards/recharge", cards_recharge, cards_recharge_check, ROUTE_JSON_BODY, ROLE_STAFF,
		   "recharge a card at a point of sale", NULL),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}", card_get_one, 0, ROLE_ANY, &family_card, "one card"),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}/balance", card_balance_get, 0, ROLE_ANY, &family_card_balance, "balance"),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}/history", card_history_get, 0, ROLE_ANY, &family_card_history, "recharges, newest first"),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}/transactions", card_transactions_get, 0, ROLE_ANY, NULL, "ledger, newest first"),
	ROUTE(METHOD_POST, V1 "/cards/{card_id}/block", card_block, 0, ROLE_ANY, NULL, "block a card"),
	ROUTE(METHOD_POST, V1 "/cards/{card_id}/unblock", card_unblock, 0, ROLE_STAFF, NULL, "unblock a card"),

	/* payments: riders top up by paying; the webhook is signed, not token-bearing,
	 * and reads its raw body (not ROUTE_JSON_BODY) to check the signature first */
	ROUTE(METHOD_POST, V1 "/payments/topups", payments_topup, ROUTE_JSON_BODY, ROLE_ANY, NULL,
	  "a pending payment for a card, with its checkout URL"),
	ROUTE(METHOD_GET, V1 "/payments", payments_list, 0, ROLE_STAFF, NULL, "payments by status and time, paged"),
	ROUTE(METHOD_GET, V1 "/payments/{payment_id}", payment_get_one, 0, ROLE_ANY, NULL, "one payment"),
	ROUTE(METHOD_POST, V1 "/payments/webhook", payments_webhook, 0, 0, NULL, "the provider's signed events"),
	ROUTE(METHOD_POST, V1 "/payments/{payment_id}/sandbox", payment_sandbox_sign, ROUTE_JSON_BODY, ROLE_ANY, NULL,
	  "sandbox checkout: a signed event to deliver"),
	ROUTE(METHOD_GET, "/checkout/{payment_id}", static_get, ROUTE_INLINE, 0, NULL, "sandbox checkout page"),

	/* trips and fares */
	CARD_WRITE(METHOD_POST, V1 "/trips/start", trips_start, trips_start_check, ROUTE_JSON_BODY, ROLE_ANY,
		   "tap in: board and pay", NULL),
	ASYNC(METHOD_POST, V1 "/trips/end", trips_end, trips_end_check, ROUTE_JSON_BODY, ROLE_ANY, "tap out"),
	ROUTE(METHOD_GET, V1 "/trips/{trip_id}", trip_get_one, 0, ROLE_ANY, &family_trip, "one trip"),
	ROUTE(METHOD_GET, V1 "/trips/card/{card_id}", trips_of_card, 0, ROLE_ANY, NULL, "a card's trips, newest first"),
	ROUTE(METHOD_GET, V1 "/trips/user/{user_id}", trips_of_user, 0, ROLE_ANY, NULL, "a user's trips, newest first"),
	ROUTE(METHOD_GET, V1 "/fares", fares_get, 0, 0, &family_fares, "fare products and rules in force"),

	/* analytics (and the earlier API's paths) */
	ROUTE(METHOD_GET, V1 "/analytics/trips/total", analytics_trips_total_get, 0, 0, &family_trips_total, "trip totals"),
	ROUTE(METHOD_GET, V1 "/trips/total", analytics_trips_total_get, 0, 0, &family_trips_total, "trip totals (alias)"),
	ROUTE(METHOD_GET, V1 "/analytics/trips/localities", analytics_trips_localities_get, 0, 0, &family_trips_localities,
	  "trip totals per locality"),
	ROUTE(METHOD_GET, V1 "/trips/total/localities", analytics_trips_localities_get, 0, 0, &family_trips_localities,
	  "trip totals per locality (alias)"),
	ROUTE(METHOD_GET, V1 "/analytics/trips/daily", analytics_trips_daily_get, 0, 0, &family_trips_daily,
	      "trips and revenue per day"),
	ROUTE(METHOD_GET, V1 "/analytics/revenue", analytics_revenue_get, 0, 0, &family_revenue, "fare revenue"),
	ROUTE(METHOD_GET, V1 "/finance/revenue", analytics_revenue_get, 0, 0, &family_revenue, "fare revenue (alias)"),
	ROUTE(METHOD_GET, V1 "/analytics/revenue/localities", analytics_revenue_localities_get, 0, 0,
	  &family_revenue_localities, "fare revenue per locality"),
	ROUTE(METHOD_GET, V1 "/finance/revenue/localities", analytics_revenue_localities_get, 0, 0,
	  &family_revenue_localities, "fare revenue per locality (alias)"),
	ROUTE(METHOD_GET, V1 "/analytics/users/active", users_active_count, 0, 0, &family_users_active,
	  "riders who travelled in 30 days"),
	ROUTE(METHOD_GET, V1 "/analytics/stations/{station_id}/top-destinations", analytics_top_destinations_get, 0, 0,
	  &family_top_destinations, "where riders boarding here go"),
	ROUTE(METHOD_GET, V1 "/cache/stats", cache_stats_get, 0, ROLE_ADMIN, NULL, "cache hits, misses, memory"),
	ROUTE(METHOD_POST, V1 "/cache/clear", cache_clear_post, 0, ROLE_ADMIN, NULL, "empty every cache"),

	/* regional rail */
	ROUTE(METHOD_GET, V1 "/rail/trains", rail_trains_get, 0, 0, &family_rail_trains, "trains and coach layouts"),
	ROUTE(METHOD_GET, V1 "/rail/runs", rail_runs_get, 0, 0, &family_rail_runs, "runs of a day, with free seats"),
	ROUTE(METHOD_POST, V1 "/rail/runs", rail_runs_create, ROUTE_JSON_BODY, ROLE_ADMIN, NULL, "schedule a run"),
	ROUTE(METHOD_GET, V1 "/rail/runs/{run_id}/seats", rail_seats_get, 0, 0, &family_rail_seats, "seat map of a run"),
	CARD_WRITE(METHOD_POST, V1 "/rail/bookings", rail_bookings_create, rail_bookings_check, ROUTE_JSON_BODY,
		   ROLE_RIDER | ROLE_ADMIN, "book seats, paid from a card", rail_bookings_batch),
	ROUTE(METHOD_GET, V1 "/rail/bookings", rail_bookings_list, 0, ROLE_RIDER | ROLE_ADMIN, NULL, "bookings, newest first"),
	ROUTE(METHOD_GET, V1 "/rail/bookings/{booking_id}", rail_booking_get_one, 0, ROLE_RIDER | ROLE_ADMIN, NULL,
	  "one booking"),
	ROUTE(METHOD_POST, V1 "/rail/bookings/{booking_id}/cancel", rail_booking_cancel, 0, ROLE_RIDER | ROLE_ADMIN, NULL,
	  "cancel and refund"),
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);
