-- Regional rail westwards from Bogotá (after the Regiotram de Occidente): ten
-- stations, two trains, runs every 30 minutes from 05:00 to 22:00 (Bogotá
-- time) in each direction for the next 14 days. Runs already present stay
-- (with their bookings); missing ones are added with their seats.

INSERT INTO stations (station_id, station_code, name, station_type, locality_id, latitude, longitude) VALUES
    (201, 'RT-01', 'Estación de la Sabana', 'rail', 14, 4.6067, -74.0865),
    (202, 'RT-02', 'Carrera 50', 'rail', 16, 4.6183, -74.1026),
    (203, 'RT-03', 'Avenida 68', 'rail', 16, 4.6290, -74.1180),
    (204, 'RT-04', 'Avenida Boyacá', 'rail', 9, 4.6446, -74.1322),
    (205, 'RT-05', 'Fontibón', 'rail', 9, 4.6780, -74.1430),
    (206, 'RT-06', 'Funza', 'rail', NULL, 4.7163, -74.2100),
    (207, 'RT-07', 'Mosquera', 'rail', NULL, 4.7059, -74.2302),
    (208, 'RT-08', 'Madrid', 'rail', NULL, 4.7325, -74.2640),
    (209, 'RT-09', 'El Corzo', 'rail', NULL, 4.7500, -74.3000),
    (210, 'RT-10', 'Facatativá', 'rail', NULL, 4.8136, -74.3545)
ON CONFLICT (station_id) DO UPDATE SET station_code = EXCLUDED.station_code, name = EXCLUDED.name,
    station_type = EXCLUDED.station_type, locality_id = EXCLUDED.locality_id,
    latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude;
SELECT setval(pg_get_serial_sequence('stations', 'station_id'), (SELECT max(station_id) FROM stations));

INSERT INTO trains (train_id, train_code, name) VALUES
    (1, 'RT-A', 'Regiotram A (4 coaches)'),
    (2, 'RT-B', 'Regiotram B (2 coaches)')
ON CONFLICT (train_id) DO NOTHING;
SELECT setval(pg_get_serial_sequence('trains', 'train_id'), (SELECT max(train_id) FROM trains));

INSERT INTO train_coaches (train_id, coach, class, seats, price) VALUES
    (1, 1, 'first', 40, 12000),
    (1, 2, 'standard', 60, 6500),
    (1, 3, 'standard', 60, 6500),
    (1, 4, 'standard', 60, 6500),
    (2, 1, 'standard', 50, 6500),
    (2, 2, 'standard', 50, 6500)
ON CONFLICT (train_id, coach) DO NOTHING;

-- Westbound on train A, eastbound on train B; 58 minutes end to end.
INSERT INTO rail_runs (train_id, origin_station_id, destination_station_id, departure_time, arrival_time)
SELECT dir.train_id, dir.origin, dir.destination,
       ((now() AT TIME ZONE 'America/Bogota')::date + d + time '05:00' + slot * interval '30 minutes')
           AT TIME ZONE 'America/Bogota',
       ((now() AT TIME ZONE 'America/Bogota')::date + d + time '05:58' + slot * interval '30 minutes')
           AT TIME ZONE 'America/Bogota'
FROM generate_series(0, 13) d, generate_series(0, 34) slot,
     (VALUES (1, 201, 210), (2, 210, 201)) AS dir(train_id, origin, destination)
ON CONFLICT (train_id, departure_time) DO NOTHING;

SELECT rail_run_seats(r.run_id) FROM rail_runs r
WHERE NOT EXISTS (SELECT 1 FROM rail_seats s WHERE s.run_id = r.run_id);
