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

/* method, pattern, handler, flags, roles allowed (0 = public), cache family */
#define ROUTE(m, p, h, f, r, c) { .method = (m), .pattern = (p), .handler = (h), .handler_name = #h, .flags = (f), \
				  .roles = (r), .cache = (c) }
/* a POST that may run asynchronously; check: what it verifies before publishing */
#define ASYNC(m, p, h, chk, f, r) { .method = (m), .pattern = (p), .handler = (h), .handler_name = #h, \
				    .flags = (f) | ROUTE_ASYNC, .roles = (r), .check = (chk) }
/* an async card write: writes of one card wait in its lane (http/lanes.h); batch: NULL or how a lane's
 * waiting requests run as one */
#define CARD_WRITE(m, p, h, chk, f, r, batch) { .method = (m), .pattern = (p), .handler = (h), .handler_name = #h, \
	.flags = (f) | ROUTE_ASYNC, .roles = (r), .check = (chk), .lane = request_card_lane, .lane_batch = (batch) }

const struct route api_routes[] = {
	/* health, metrics, docs */
	ROUTE(METHOD_GET, "/health", health_status, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, V1 "/health", health_status, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/health/db", health_db, 0, 0, NULL),
	ROUTE(METHOD_GET, V1 "/health/db", health_db, 0, 0, NULL),
	ROUTE(METHOD_GET, "/health/cache", health_cache, 0, 0, NULL),
	ROUTE(METHOD_GET, V1 "/health/cache", health_cache, 0, 0, NULL),
	ROUTE(METHOD_GET, "/health/queue", health_queue, 0, 0, NULL),
	ROUTE(METHOD_GET, V1 "/health/queue", health_queue, 0, 0, NULL),
	ROUTE(METHOD_GET, "/livez", health_live, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/readyz", health_ready, 0, 0, NULL),
	ROUTE(METHOD_GET, "/metrics", metrics_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/openapi.json", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/docs", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/docs/swagger-ui.css", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/docs/swagger-ui-bundle.js", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/docs/swagger-ui-standalone-preset.js", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/docs/favicon-32x32.png", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/console/{*file}", static_get, ROUTE_INLINE, 0, NULL),
	ROUTE(METHOD_GET, "/vendor/{*file}", static_get, ROUTE_INLINE, 0, NULL),

	/* network */
	ROUTE(METHOD_GET, V1 "/localities", localities_list, 0, 0, &family_localities),
	ROUTE(METHOD_GET, V1 "/stations", stations_list, 0, 0, &family_stations),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}", station_get, 0, 0, &family_station),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}/arrivals", station_arrivals, 0, 0, &family_arrivals),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}/alerts", station_alerts, 0, 0, &family_alerts),
	ROUTE(METHOD_GET, V1 "/stations/{station_id}/live", station_live, 0, 0, NULL),
	ROUTE(METHOD_GET, V1 "/routes", routes_list, 0, 0, &family_routes),
	ROUTE(METHOD_GET, V1 "/routes/{route_id}", route_get, 0, 0, &family_route),
	ROUTE(METHOD_POST, V1 "/alerts", alerts_create, ROUTE_JSON_BODY, ROLE_ADMIN, NULL),
	ROUTE(METHOD_PATCH, V1 "/alerts/{alert_id}", alerts_end, ROUTE_JSON_BODY, ROLE_ADMIN, NULL),

	/* auth and users */
	/* the password hash runs first, on the password pool (http/hashpool.h) */
	{ .method = METHOD_POST, .pattern = V1 "/auth/register", .handler = auth_register,
	  .handler_name = "auth_register", .flags = ROUTE_JSON_BODY,
	  .prepare = auth_register_prepare },
	ROUTE(METHOD_POST, V1 "/auth/login", auth_login, ROUTE_JSON_BODY, 0, NULL),
	ROUTE(METHOD_POST, V1 "/auth/refresh", auth_refresh, ROUTE_JSON_BODY, 0, NULL),
	ROUTE(METHOD_POST, V1 "/auth/logout", auth_logout, 0, ROLE_ANY, NULL),
	ROUTE(METHOD_GET, V1 "/users/me", users_me, 0, ROLE_ANY, NULL),
	ROUTE(METHOD_GET, V1 "/users", users_list, 0, ROLE_ADMIN, NULL),
	ROUTE(METHOD_GET, V1 "/users/count", users_count, 0, 0, &family_users_count),
	ROUTE(METHOD_GET, V1 "/users/active/count", users_active_count, 0, 0, &family_users_active),
	ROUTE(METHOD_GET, V1 "/users/latest", users_latest, 0, ROLE_ADMIN, NULL),
	ROUTE(METHOD_PATCH, V1 "/users/{user_id}", users_set_role, ROUTE_JSON_BODY, ROLE_ADMIN, NULL),

	/* asynchronous commands */
	ROUTE(METHOD_GET, V1 "/operations/{operation_id}", operation_get_one, 0, ROLE_ANY, NULL),

	/* cards */
	ROUTE(METHOD_POST, V1 "/cards", cards_create, ROUTE_JSON_BODY, ROLE_ANY, NULL),
	CARD_WRITE(METHOD_POST, V1 "/cards/recharge", cards_recharge, cards_recharge_check, ROUTE_JSON_BODY, ROLE_STAFF, NULL),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}", card_get_one, 0, ROLE_ANY, &family_card),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}/balance", card_balance_get, 0, ROLE_ANY, &family_card_balance),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}/history", card_history_get, 0, ROLE_ANY, &family_card_history),
	ROUTE(METHOD_GET, V1 "/cards/{card_id}/transactions", card_transactions_get, 0, ROLE_ANY, NULL),
	ROUTE(METHOD_POST, V1 "/cards/{card_id}/block", card_block, 0, ROLE_ANY, NULL),
	ROUTE(METHOD_POST, V1 "/cards/{card_id}/unblock", card_unblock, 0, ROLE_STAFF, NULL),

	/* payments: riders top up by paying; the webhook is signed, not token-bearing,
	 * and reads its raw body (not ROUTE_JSON_BODY) to check the signature first */
	ROUTE(METHOD_POST, V1 "/payments/topups", payments_topup, ROUTE_JSON_BODY, ROLE_ANY, NULL),
	ROUTE(METHOD_GET, V1 "/payments", payments_list, 0, ROLE_STAFF, NULL),
	ROUTE(METHOD_GET, V1 "/payments/{payment_id}", payment_get_one, 0, ROLE_ANY, NULL),
	ROUTE(METHOD_POST, V1 "/payments/webhook", payments_webhook, 0, 0, NULL),
	ROUTE(METHOD_POST, V1 "/payments/{payment_id}/sandbox", payment_sandbox_sign, ROUTE_JSON_BODY, ROLE_ANY, NULL),
	ROUTE(METHOD_GET, "/checkout/{payment_id}", static_get, ROUTE_INLINE, 0, NULL),

	/* trips and fares */
	CARD_WRITE(METHOD_POST, V1 "/trips/start", trips_start, trips_start_check, ROUTE_JSON_BODY, ROLE_ANY, NULL),
	ASYNC(METHOD_POST, V1 "/trips/end", trips_end, trips_end_check, ROUTE_JSON_BODY, ROLE_ANY),
	ROUTE(METHOD_GET, V1 "/trips/{trip_id}", trip_get_one, 0, ROLE_ANY, &family_trip),
	ROUTE(METHOD_GET, V1 "/trips/card/{card_id}", trips_of_card, 0, ROLE_ANY, NULL),
	ROUTE(METHOD_GET, V1 "/trips/user/{user_id}", trips_of_user, 0, ROLE_ANY, NULL),
	ROUTE(METHOD_GET, V1 "/fares", fares_get, 0, 0, &family_fares),

	/* analytics (and the earlier API's paths) */
	ROUTE(METHOD_GET, V1 "/analytics/trips/total", analytics_trips_total_get, 0, 0, &family_trips_total),
	ROUTE(METHOD_GET, V1 "/trips/total", analytics_trips_total_get, 0, 0, &family_trips_total),
	ROUTE(METHOD_GET, V1 "/analytics/trips/localities", analytics_trips_localities_get, 0, 0, &family_trips_localities),
	ROUTE(METHOD_GET, V1 "/trips/total/localities", analytics_trips_localities_get, 0, 0, &family_trips_localities),
	ROUTE(METHOD_GET, V1 "/analytics/trips/daily", analytics_trips_daily_get, 0, 0, &family_trips_daily),
	ROUTE(METHOD_GET, V1 "/analytics/revenue", analytics_revenue_get, 0, 0, &family_revenue),
	ROUTE(METHOD_GET, V1 "/finance/revenue", analytics_revenue_get, 0, 0, &family_revenue),
	ROUTE(METHOD_GET, V1 "/analytics/revenue/localities", analytics_revenue_localities_get, 0, 0,
	  &family_revenue_localities),
	ROUTE(METHOD_GET, V1 "/finance/revenue/localities", analytics_revenue_localities_get, 0, 0,
	  &family_revenue_localities),
	ROUTE(METHOD_GET, V1 "/analytics/users/active", users_active_count, 0, 0, &family_users_active),
	ROUTE(METHOD_GET, V1 "/analytics/stations/{station_id}/top-destinations", analytics_top_destinations_get, 0, 0,
	  &family_top_destinations),
	ROUTE(METHOD_GET, V1 "/cache/stats", cache_stats_get, 0, ROLE_ADMIN, NULL),
	ROUTE(METHOD_POST, V1 "/cache/clear", cache_clear_post, 0, ROLE_ADMIN, NULL),

	/* regional rail */
	ROUTE(METHOD_GET, V1 "/rail/trains", rail_trains_get, 0, 0, &family_rail_trains),
	ROUTE(METHOD_GET, V1 "/rail/runs", rail_runs_get, 0, 0, &family_rail_runs),
	ROUTE(METHOD_POST, V1 "/rail/runs", rail_runs_create, ROUTE_JSON_BODY, ROLE_ADMIN, NULL),
	ROUTE(METHOD_GET, V1 "/rail/runs/{run_id}/seats", rail_seats_get, 0, 0, &family_rail_seats),
	CARD_WRITE(METHOD_POST, V1 "/rail/bookings", rail_bookings_create, rail_bookings_check, ROUTE_JSON_BODY,
		   ROLE_RIDER | ROLE_ADMIN, rail_bookings_batch),
	ROUTE(METHOD_GET, V1 "/rail/bookings", rail_bookings_list, 0, ROLE_RIDER | ROLE_ADMIN, NULL),
	ROUTE(METHOD_GET, V1 "/rail/bookings/{booking_id}", rail_booking_get_one, 0, ROLE_RIDER | ROLE_ADMIN, NULL),
	ROUTE(METHOD_POST, V1 "/rail/bookings/{booking_id}/cancel", rail_booking_cancel, 0, ROLE_RIDER | ROLE_ADMIN, NULL),
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);
