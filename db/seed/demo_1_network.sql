-- Demo network for `transitd seed --demo`: a deterministic, simplified model of
-- Bogotá's TransMilenio / SITP network (portals, trunk corridors, TransMiCable,
-- zonal stops, routes, fleet, alerts and an hour of predicted arrivals).
--
-- The caller runs this whole file inside one transaction (no BEGIN/COMMIT
-- here), as a single multi-statement query: plain SQL only, no psql commands.
-- It is idempotent: every row has an explicit id and is upserted, so a second
-- run leaves the same data. The route stop lists of the demo routes are
-- rewritten, and arrivals are regenerated relative to now() on every run.
--
-- Id ranges owned by the demo: localities 1-20, stations 1-155,
-- routes 1-61, vehicles 1-314, alerts 1-8.

-- ---------------------------------------------------------------------------
-- Localities: the 20 localidades of Bogotá D.C. by official number.
-- ---------------------------------------------------------------------------
INSERT INTO localities (locality_id, name) VALUES
    (1,  'Usaquén'),
    (2,  'Chapinero'),
    (3,  'Santa Fe'),
    (4,  'San Cristóbal'),
    (5,  'Usme'),
    (6,  'Tunjuelito'),
    (7,  'Bosa'),
    (8,  'Kennedy'),
    (9,  'Fontibón'),
    (10, 'Engativá'),
    (11, 'Suba'),
    (12, 'Barrios Unidos'),
    (13, 'Teusaquillo'),
    (14, 'Los Mártires'),
    (15, 'Antonio Nariño'),
    (16, 'Puente Aranda'),
    (17, 'La Candelaria'),
    (18, 'Rafael Uribe Uribe'),
    (19, 'Ciudad Bolívar'),
    (20, 'Sumapaz')
ON CONFLICT (locality_id) DO UPDATE SET name = EXCLUDED.name;

-- ---------------------------------------------------------------------------
-- Stations. Coordinates are approximate (good enough for maps and "near me").
-- ---------------------------------------------------------------------------
INSERT INTO stations (station_id, station_code, name, station_type, locality_id, latitude, longitude, is_active) VALUES
    -- Portals
    (1,   'TM-001', 'Portal Norte',            'portal', 1,  4.7545, -74.0462, true),
    (2,   'TM-002', 'Portal Suba',             'portal', 11, 4.7460, -74.0955, true),
    (3,   'TM-003', 'Portal 80',               'portal', 10, 4.7105, -74.1120, true),
    (4,   'TM-004', 'Portal Eldorado',         'portal', 9,  4.6825, -74.1185, true),
    (5,   'TM-005', 'Portal Américas',         'portal', 8,  4.6290, -74.2050, true),
    (6,   'TM-006', 'Portal Sur',              'portal', 7,  4.5960, -74.1735, true),
    (7,   'TM-007', 'Portal Tunal',            'portal', 6,  4.5765, -74.1315, true),
    (8,   'TM-008', 'Portal Usme',             'portal', 5,  4.5330, -74.1195, true),
    (9,   'TM-009', 'Portal 20 de Julio',      'portal', 4,  4.5700, -74.0935, true),
    -- Autopista Norte
    (10,  'TM-010', 'Toberín',                 'trunk',  1,  4.7470, -74.0475, true),
    (11,  'TM-011', 'Mazurén',                 'trunk',  1,  4.7330, -74.0490, true),
    (12,  'TM-012', 'Calle 146',               'trunk',  1,  4.7250, -74.0500, true),
    (13,  'TM-013', 'Alcalá',                  'trunk',  1,  4.7130, -74.0515, true),
    (14,  'TM-014', 'Calle 127',               'trunk',  1,  4.7025, -74.0535, true),
    (15,  'TM-015', 'Pepe Sierra',             'trunk',  1,  4.6950, -74.0553, true),
    (16,  'TM-016', 'Calle 100',               'trunk',  2,  4.6845, -74.0565, true),
    (17,  'TM-017', 'Virrey',                  'trunk',  2,  4.6760, -74.0575, true),
    (18,  'TM-018', 'Calle 85',                'trunk',  2,  4.6710, -74.0582, true),
    (19,  'TM-019', 'Héroes',                  'trunk',  2,  4.6665, -74.0595, true),
    -- Caracas
    (20,  'TM-020', 'Calle 72',                'trunk',  2,  4.6575, -74.0625, true),
    (21,  'TM-021', 'Flores',                  'trunk',  2,  4.6530, -74.0640, true),
    (22,  'TM-022', 'Calle 63',                'trunk',  2,  4.6470, -74.0655, true),
    (23,  'TM-023', 'Calle 57',                'trunk',  2,  4.6420, -74.0668, true),
    (24,  'TM-024', 'Marly',                   'trunk',  2,  4.6365, -74.0680, true),
    (25,  'TM-025', 'Calle 45',                'trunk',  13, 4.6310, -74.0692, true),
    (26,  'TM-026', 'Calle 26',                'trunk',  3,  4.6180, -74.0725, true),
    (27,  'TM-027', 'Calle 19',                'trunk',  14, 4.6090, -74.0760, true),
    (28,  'TM-028', 'Av. Jiménez',             'trunk',  3,  4.6030, -74.0790, true),
    (29,  'TM-029', 'Tercer Milenio',          'trunk',  3,  4.5978, -74.0830, true),
    -- Caracas Sur and the Tunal branch
    (30,  'TM-030', 'Hospitales',              'trunk',  3,  4.5925, -74.0868, true),
    (31,  'TM-031', 'Hortúa',                  'trunk',  15, 4.5890, -74.0905, true),
    (32,  'TM-032', 'Nariño',                  'trunk',  15, 4.5850, -74.0950, true),
    (33,  'TM-033', 'Restrepo',                'trunk',  15, 4.5800, -74.1000, true),
    (34,  'TM-034', 'Olaya',                   'trunk',  18, 4.5760, -74.1040, true),
    (35,  'TM-035', 'Quiroga',                 'trunk',  18, 4.5715, -74.1075, true),
    (36,  'TM-036', 'Calle 40 Sur',            'trunk',  18, 4.5665, -74.1110, true),
    (37,  'TM-037', 'Santa Lucía',             'trunk',  6,  4.5600, -74.1140, true),
    (38,  'TM-038', 'Socorro',                 'trunk',  18, 4.5520, -74.1165, true),
    (39,  'TM-039', 'Molinos',                 'trunk',  18, 4.5440, -74.1180, true),
    (40,  'TM-040', 'Biblioteca',              'trunk',  6,  4.5700, -74.1190, true),
    (41,  'TM-041', 'Parque',                  'trunk',  6,  4.5735, -74.1255, true),
    -- Suba
    (42,  'TM-042', 'La Campiña',              'trunk',  11, 4.7400, -74.0925, true),
    (43,  'TM-043', '21 Ángeles',              'trunk',  11, 4.7330, -74.0885, true),
    (44,  'TM-044', 'Gratamira',               'trunk',  11, 4.7265, -74.0850, true),
    (45,  'TM-045', 'Suba - Av. Boyacá',       'trunk',  11, 4.7195, -74.0810, true),
    (46,  'TM-046', 'Niza - Calle 127',        'trunk',  11, 4.7120, -74.0765, true),
    (47,  'TM-047', 'Shaio',                   'trunk',  11, 4.7020, -74.0700, true),
    (48,  'TM-048', 'Suba - Calle 100',        'trunk',  11, 4.6900, -74.0660, true),
    (49,  'TM-049', 'Rionegro',                'trunk',  12, 4.6850, -74.0640, true),
    (50,  'TM-050', 'San Martín',              'trunk',  12, 4.6790, -74.0630, true),
    -- Calle 80
    (51,  'TM-051', 'Quirigua',                'trunk',  10, 4.7065, -74.1075, true),
    (52,  'TM-052', 'Carrera 90',              'trunk',  10, 4.7030, -74.1035, true),
    (53,  'TM-053', 'Av. Ciudad de Cali',      'trunk',  10, 4.6990, -74.0985, true),
    (54,  'TM-054', 'Minuto de Dios',          'trunk',  10, 4.6925, -74.0880, true),
    (55,  'TM-055', 'Boyacá',                  'trunk',  10, 4.6895, -74.0840, true),
    (56,  'TM-056', 'Ferias',                  'trunk',  10, 4.6860, -74.0795, true),
    (57,  'TM-057', 'Av. 68',                  'trunk',  12, 4.6820, -74.0750, true),
    (58,  'TM-058', 'Escuela Militar',         'trunk',  12, 4.6760, -74.0695, true),
    (59,  'TM-059', 'Polo',                    'trunk',  12, 4.6715, -74.0640, true),
    -- Américas
    (60,  'TM-060', 'Patio Bonito',            'trunk',  8,  4.6320, -74.1960, true),
    (61,  'TM-061', 'Biblioteca Tintal',       'trunk',  8,  4.6355, -74.1880, true),
    (62,  'TM-062', 'Banderas',                'trunk',  8,  4.6310, -74.1555, true),
    (63,  'TM-063', 'Mandalay',                'trunk',  8,  4.6290, -74.1450, true),
    (64,  'TM-064', 'Marsella',                'trunk',  8,  4.6265, -74.1320, true),
    (65,  'TM-065', 'Pradera',                 'trunk',  16, 4.6260, -74.1230, true),
    (66,  'TM-066', 'Puente Aranda',           'trunk',  16, 4.6235, -74.1120, true),
    (67,  'TM-067', 'CDS - Carrera 32',        'trunk',  16, 4.6140, -74.0960, true),
    (68,  'TM-068', 'Ricaurte',                'trunk',  14, 4.6105, -74.0910, true),
    (69,  'TM-069', 'De La Sabana',            'trunk',  14, 4.6060, -74.0830, true),
    -- NQS
    (70,  'TM-070', 'Perdomo',                 'trunk',  19, 4.5962, -74.1640, true),
    (71,  'TM-071', 'Madelena',                'trunk',  19, 4.5965, -74.1550, true),
    (72,  'TM-072', 'Sevillana',               'trunk',  8,  4.5960, -74.1460, true),
    (73,  'TM-073', 'Venecia',                 'trunk',  6,  4.5950, -74.1390, true),
    (74,  'TM-074', 'Alquería',                'trunk',  8,  4.5935, -74.1300, true),
    (75,  'TM-075', 'General Santander',       'trunk',  6,  4.5920, -74.1200, true),
    (76,  'TM-076', 'SENA',                    'trunk',  16, 4.5960, -74.1075, true),
    (77,  'TM-077', 'Santa Isabel',            'trunk',  16, 4.6000, -74.1020, true),
    (78,  'TM-078', 'Comuneros',               'trunk',  14, 4.6055, -74.0975, true),
    (79,  'TM-079', 'Paloquemao',              'trunk',  14, 4.6160, -74.0870, true),
    (80,  'TM-080', 'CAD',                     'trunk',  13, 4.6300, -74.0820, true),
    (81,  'TM-081', 'U. Nacional',             'trunk',  13, 4.6430, -74.0785, true),
    (82,  'TM-082', 'Simón Bolívar',           'trunk',  13, 4.6555, -74.0770, true),
    (83,  'TM-083', 'Av. Chile',               'trunk',  12, 4.6650, -74.0720, true),
    -- Calle 26 / Eldorado
    (84,  'TM-084', 'Modelia',                 'trunk',  9,  4.6760, -74.1135, true),
    (85,  'TM-085', 'Normandía',               'trunk',  10, 4.6705, -74.1095, true),
    (86,  'TM-086', 'Av. Rojas',               'trunk',  10, 4.6655, -74.1055, true),
    (87,  'TM-087', 'El Tiempo - Maloka',      'trunk',  9,  4.6595, -74.1010, true),
    (88,  'TM-088', 'Salitre - El Greco',      'trunk',  13, 4.6545, -74.0970, true),
    (89,  'TM-089', 'CAN - British Council',   'trunk',  13, 4.6490, -74.0930, true),
    (90,  'TM-090', 'Corferias',               'trunk',  13, 4.6395, -74.0870, true),
    (91,  'TM-091', 'Ciudad Universitaria',    'trunk',  13, 4.6345, -74.0830, true),
    (92,  'TM-092', 'Centro Memoria',          'trunk',  3,  4.6240, -74.0765, true),
    -- Carrera 10
    (93,  'TM-093', 'Country Sur',             'trunk',  4,  4.5755, -74.0928, true),
    (94,  'TM-094', 'Av. 1 de Mayo',           'trunk',  15, 4.5805, -74.0905, true),
    (95,  'TM-095', 'Ciudad Jardín - UAN',     'trunk',  15, 4.5855, -74.0880, true),
    (96,  'TM-096', 'Policarpa',               'trunk',  15, 4.5895, -74.0845, true),
    (97,  'TM-097', 'Bicentenario',            'trunk',  3,  4.5985, -74.0800, true),
    (98,  'TM-098', 'San Victorino',           'trunk',  3,  4.6020, -74.0770, true),
    (99,  'TM-099', 'Las Nieves',              'trunk',  3,  4.6075, -74.0740, true),
    (100, 'TM-100', 'Museo Nacional',          'trunk',  3,  4.6155, -74.0690, true),
    -- Eje Ambiental (Museo del Oro closed for works in the demo)
    (101, 'TM-101', 'Museo del Oro',           'trunk',  3,  4.6015, -74.0725, false),
    (102, 'TM-102', 'Las Aguas',               'trunk',  17, 4.6025, -74.0680, true),
    -- TransMiCable: Ciudad Bolívar (line 1) and San Cristóbal (line 2)
    (103, 'TMC-01', 'Portal Tunal - TransMiCable',  'cable', 6,  4.5760, -74.1322, true),
    (104, 'TMC-02', 'Juan Pablo II',                'cable', 19, 4.5700, -74.1390, true),
    (105, 'TMC-03', 'Manitas',                      'cable', 19, 4.5640, -74.1460, true),
    (106, 'TMC-04', 'Mirador del Paraíso',          'cable', 19, 4.5580, -74.1530, true),
    (107, 'TMC-05', '20 de Julio - TransMiCable',   'cable', 4,  4.5690, -74.0905, true),
    (108, 'TMC-06', 'La Victoria',                  'cable', 4,  4.5600, -74.0830, true),
    (109, 'TMC-07', 'Altamira',                     'cable', 4,  4.5530, -74.0770, true),
    -- Zonal SITP stops
    (110, 'SITP-001', 'Cl 127 - Kr 15',                 'zonal', 1,  4.7040, -74.0445, true),
    (111, 'SITP-002', 'Cl 140 - Kr 7',                  'zonal', 1,  4.7195, -74.0300, true),
    (112, 'SITP-003', 'Cl 153 - Kr 9',                  'zonal', 1,  4.7330, -74.0310, false),
    (113, 'SITP-004', 'Cl 170 - Kr 9',                  'zonal', 1,  4.7525, -74.0295, true),
    (114, 'SITP-005', 'Verbenal - Cl 187',              'zonal', 1,  4.7660, -74.0330, true),
    (115, 'SITP-006', 'Cl 72 - Kr 7',                   'zonal', 2,  4.6550, -74.0560, true),
    (116, 'SITP-007', 'Cl 94 - Kr 15',                  'zonal', 2,  4.6785, -74.0520, true),
    (117, 'SITP-008', 'Cl 19 - Kr 7',                   'zonal', 3,  4.6060, -74.0705, true),
    (118, 'SITP-009', 'San Blas - Cl 11 Sur',           'zonal', 4,  4.5790, -74.0790, true),
    (119, 'SITP-010', 'Av. 1 de Mayo - Kr 3 Este',      'zonal', 4,  4.5670, -74.0870, true),
    (120, 'SITP-011', 'Los Libertadores - Cl 52 Sur',   'zonal', 4,  4.5470, -74.0880, true),
    (121, 'SITP-012', 'Santa Librada - Cl 76 Sur',      'zonal', 5,  4.5240, -74.1210, true),
    (122, 'SITP-013', 'Yomasa - Cl 91 Sur',             'zonal', 5,  4.5110, -74.1150, true),
    (123, 'SITP-014', 'Usme Pueblo - Kr 3',             'zonal', 5,  4.4740, -74.1265, true),
    (124, 'SITP-015', 'Abraham Lincoln - Kr 24',        'zonal', 6,  4.5830, -74.1250, true),
    (125, 'SITP-016', 'Fátima - Cl 46 Sur',             'zonal', 6,  4.5890, -74.1330, true),
    (126, 'SITP-017', 'Av. Bosa - Kr 78',               'zonal', 7,  4.6120, -74.1850, true),
    (127, 'SITP-018', 'Bosa Centro - Cl 65 Sur',        'zonal', 7,  4.6170, -74.1930, true),
    (128, 'SITP-019', 'Bosa Recreo - Cl 73 Sur',        'zonal', 7,  4.6230, -74.2030, true),
    (129, 'SITP-020', 'Kennedy Central - Cl 38 Sur',    'zonal', 8,  4.6245, -74.1525, true),
    (130, 'SITP-021', 'Timiza - Cl 42 Sur',             'zonal', 8,  4.6120, -74.1500, true),
    (131, 'SITP-022', 'Corabastos - Kr 80',             'zonal', 8,  4.6300, -74.1640, true),
    (132, 'SITP-023', 'Fontibón Centro - Cl 17',        'zonal', 9,  4.6740, -74.1450, true),
    (133, 'SITP-024', 'Av. Centenario - Kr 100',        'zonal', 9,  4.6640, -74.1390, true),
    (134, 'SITP-025', 'Hayuelos - Cl 20',               'zonal', 9,  4.6620, -74.1290, true),
    (135, 'SITP-026', 'Cl 72 - Av. Boyacá',             'zonal', 10, 4.6805, -74.0890, true),
    (136, 'SITP-027', 'Garcés Navas - Cl 72',           'zonal', 10, 4.7000, -74.1100, true),
    (137, 'SITP-028', 'Engativá Pueblo - Kr 120',       'zonal', 10, 4.7080, -74.1420, true),
    (138, 'SITP-029', 'Bolivia - Cl 86',                'zonal', 10, 4.7210, -74.1150, true),
    (139, 'SITP-030', 'Suba Centro - Cl 145',           'zonal', 11, 4.7420, -74.0835, true),
    (140, 'SITP-031', 'Colina - Cl 138',                'zonal', 11, 4.7240, -74.0650, true),
    (141, 'SITP-032', 'Cl 170 - Kr 58',                 'zonal', 11, 4.7530, -74.0560, true),
    (142, 'SITP-033', 'Tibabuyes - Cl 139',             'zonal', 11, 4.7470, -74.1030, true),
    (143, 'SITP-034', 'Cl 68 - Kr 24',                  'zonal', 12, 4.6600, -74.0700, true),
    (144, 'SITP-035', 'Galerías - Cl 53',               'zonal', 13, 4.6420, -74.0745, true),
    (145, 'SITP-036', 'Voto Nacional - Cl 10',          'zonal', 14, 4.6025, -74.0850, true),
    (146, 'SITP-037', 'Restrepo - Kr 19',               'zonal', 15, 4.5810, -74.1040, true),
    (147, 'SITP-038', 'Cl 13 - Kr 50',                  'zonal', 16, 4.6290, -74.1040, true),
    (148, 'SITP-039', 'Galán - Cl 6',                   'zonal', 16, 4.6120, -74.1130, true),
    (149, 'SITP-040', 'Cl 10 - Kr 7',                   'zonal', 17, 4.5975, -74.0750, true),
    (150, 'SITP-041', 'Diana Turbay - Cl 48 Sur',       'zonal', 18, 4.5520, -74.1030, true),
    (151, 'SITP-042', 'Marco Fidel Suárez - Cl 44 Sur', 'zonal', 18, 4.5640, -74.1060, true),
    (152, 'SITP-043', 'Meissen - Av. Boyacá',           'zonal', 19, 4.5780, -74.1410, true),
    (153, 'SITP-044', 'Candelaria La Nueva - Cl 60 Sur','zonal', 19, 4.5680, -74.1470, true),
    (154, 'SITP-045', 'Sierra Morena - Cl 73 Sur',      'zonal', 19, 4.5600, -74.1620, true),
    (155, 'SITP-046', 'Lucero - Kr 17F',                'zonal', 19, 4.5520, -74.1480, true)
ON CONFLICT (station_id) DO UPDATE SET
    station_code = EXCLUDED.station_code,
    name         = EXCLUDED.name,
    station_type = EXCLUDED.station_type,
    locality_id  = EXCLUDED.locality_id,
    latitude     = EXCLUDED.latitude,
    longitude    = EXCLUDED.longitude,
    is_active    = EXCLUDED.is_active;

-- ---------------------------------------------------------------------------
-- Routes. Colours by service type: trunk red, cable orange, feeder green,
-- zonal SITP blue.
-- ---------------------------------------------------------------------------
INSERT INTO routes (route_id, route_code, name, route_type, color, is_active) VALUES
    -- Trunk (TransMilenio)
    (1,  'B74',  'Portal Norte - Tercer Milenio (expreso)',         'trunk',  '#C8102E', true),
    (2,  'B1',   'Todo en uno Autopista Norte',                     'trunk',  '#C8102E', true),
    (3,  'J72',  'Portal Norte - Universidades (expreso)',          'trunk',  '#C8102E', true),
    (4,  'H75',  'Portal Usme - Portal Norte (expreso)',            'trunk',  '#C8102E', true),
    (5,  'H13',  'Todo en uno Caracas Sur',                         'trunk',  '#C8102E', true),
    (6,  'H20',  'Portal Tunal - Calle 26',                         'trunk',  '#C8102E', true),
    (7,  'H54',  'Portal Tunal - Héroes (expreso)',                 'trunk',  '#C8102E', true),
    (8,  'D20',  'Portal 80 - Av. Jiménez (expreso)',               'trunk',  '#C8102E', true),
    (9,  'D24',  'Todo en uno Calle 80',                            'trunk',  '#C8102E', true),
    (10, 'D81',  'Portal 80 - Ricaurte',                            'trunk',  '#C8102E', true),
    (11, 'C17',  'Portal Suba - Ricaurte',                          'trunk',  '#C8102E', true),
    (12, 'C15',  'Todo en uno Suba',                                'trunk',  '#C8102E', true),
    (13, 'C29',  'Portal Suba - Calle 72 (expreso)',                'trunk',  '#C8102E', true),
    (14, 'G43',  'Portal Sur - Portal Suba (expreso)',              'trunk',  '#C8102E', true),
    (15, 'G11',  'Todo en uno NQS Sur',                             'trunk',  '#C8102E', true),
    (16, 'G22',  'Portal Sur - Av. Jiménez',                        'trunk',  '#C8102E', true),
    (17, 'F23',  'Portal Américas - Universidades',                 'trunk',  '#C8102E', true),
    (18, 'F19',  'Todo en uno Américas',                            'trunk',  '#C8102E', true),
    (19, 'F61',  'Portal Américas - Calle 100 (expreso)',           'trunk',  '#C8102E', true),
    (20, 'K23',  'Portal Eldorado - Universidades',                 'trunk',  '#C8102E', true),
    (21, 'K10',  'Todo en uno Calle 26',                            'trunk',  '#C8102E', true),
    (22, 'M86',  'Portal Eldorado - Portal 20 de Julio',            'trunk',  '#C8102E', true),
    (23, 'L10',  'Todo en uno Carrera 10',                          'trunk',  '#C8102E', true),
    (24, 'L41',  'Portal 20 de Julio - Portal Norte (expreso)',     'trunk',  '#C8102E', true),
    (25, 'B23',  'Portal Norte - Portal Sur (expreso)',             'trunk',  '#C8102E', true),
    (26, 'J24',  'Portal 80 - Universidades (dominical)',           'trunk',  '#C8102E', false),
    -- TransMiCable
    (27, 'TMC1', 'TransMiCable Ciudad Bolívar',                     'cable',  '#F28C00', true),
    (28, 'TMC2', 'TransMiCable San Cristóbal',                      'cable',  '#F28C00', true),
    -- Feeders (alimentadoras), each leaving from a portal
    (29, '16-1',  'Alimentadora Verbenal',                          'feeder', '#00A650', true),
    (30, '16-4',  'Alimentadora Cedritos',                          'feeder', '#00A650', true),
    (31, '16-14', 'Alimentadora Colina Campestre',                  'feeder', '#00A650', true),
    (32, '11-3',  'Alimentadora Suba Centro',                       'feeder', '#00A650', true),
    (33, '11-5',  'Alimentadora Tibabuyes',                         'feeder', '#00A650', true),
    (34, '10-2',  'Alimentadora Bolivia',                           'feeder', '#00A650', true),
    (35, '10-5',  'Alimentadora Garcés Navas',                      'feeder', '#00A650', true),
    (36, '9-3',   'Alimentadora Fontibón Centro',                   'feeder', '#00A650', true),
    (37, '9-6',   'Alimentadora Hayuelos',                          'feeder', '#00A650', true),
    (38, '8-2',   'Alimentadora Bosa Recreo',                       'feeder', '#00A650', true),
    (39, '8-7',   'Alimentadora Corabastos',                        'feeder', '#00A650', true),
    (40, '7-2',   'Alimentadora Bosa Centro',                       'feeder', '#00A650', true),
    (41, '7-5',   'Alimentadora Timiza',                            'feeder', '#00A650', true),
    (42, '7-8',   'Alimentadora Sierra Morena',                     'feeder', '#00A650', true),
    (43, '6-3',   'Alimentadora Meissen',                           'feeder', '#00A650', true),
    (44, '6-6',   'Alimentadora Tunjuelito',                        'feeder', '#00A650', true),
    (45, '1-1',   'Alimentadora Usme Pueblo',                       'feeder', '#00A650', true),
    (46, '1-4',   'Alimentadora Diana Turbay',                      'feeder', '#00A650', true),
    (47, '4-1',   'Alimentadora San Blas',                          'feeder', '#00A650', true),
    (48, '4-3',   'Alimentadora Los Libertadores',                  'feeder', '#00A650', true),
    -- Zonal SITP
    (49, '18-3',  'Verbenal - La Candelaria',                       'zonal',  '#1E4F9C', true),
    (50, 'C19',   'Tibabuyes - Centro',                             'zonal',  '#1E4F9C', true),
    (51, 'E44',   'Engativá - Voto Nacional',                       'zonal',  '#1E4F9C', true),
    (52, 'T25',   'Fontibón - Timiza',                              'zonal',  '#1E4F9C', true),
    (53, 'SE14',  'Bosa Recreo - Puente Aranda',                    'zonal',  '#1E4F9C', true),
    (54, 'P13',   'Usme Pueblo - La Candelaria',                    'zonal',  '#1E4F9C', true),
    (55, '190',   'Sierra Morena - Chapinero',                      'zonal',  '#1E4F9C', true),
    (56, '561',   'Los Libertadores - Las Aguas',                   'zonal',  '#1E4F9C', true),
    (57, 'C122',  'Cl 170 - Portal 80',                             'zonal',  '#1E4F9C', true),
    (58, 'E52',   'Bolivia - Patio Bonito',                         'zonal',  '#1E4F9C', true),
    (59, '226',   'Tunjuelito - Puente Aranda',                     'zonal',  '#1E4F9C', true),
    (60, 'Z7',    'Chapinero - Usaquén',                            'zonal',  '#1E4F9C', true),
    (61, '631',   'Timiza - Centro (suspendida)',                   'zonal',  '#1E4F9C', false)
ON CONFLICT (route_id) DO UPDATE SET
    route_code = EXCLUDED.route_code,
    name       = EXCLUDED.name,
    route_type = EXCLUDED.route_type,
    color      = EXCLUDED.color,
    is_active  = EXCLUDED.is_active;

-- ---------------------------------------------------------------------------
-- Route stops, in travel order, by station name (names are unique within the
-- demo stations). The demo routes' stop lists are replaced as a whole, so an
-- edit here never collides with the (route_id, station_id) unique key. A
-- misspelt name or route code fails the NOT NULL constraint on purpose.
-- ---------------------------------------------------------------------------
DELETE FROM route_stops WHERE route_id BETWEEN 1 AND 61;

WITH spec (route_code, stops) AS (VALUES
    ('B74',  ARRAY['Portal Norte', 'Toberín', 'Calle 146', 'Calle 127', 'Calle 100', 'Calle 85', 'Héroes',
                   'Calle 72', 'Calle 63', 'Marly', 'Calle 45', 'Calle 26', 'Av. Jiménez', 'Tercer Milenio']),
    ('B1',   ARRAY['Portal Norte', 'Toberín', 'Mazurén', 'Calle 146', 'Alcalá', 'Calle 127', 'Pepe Sierra',
                   'Calle 100', 'Virrey', 'Calle 85', 'Héroes']),
    ('J72',  ARRAY['Portal Norte', 'Mazurén', 'Alcalá', 'Pepe Sierra', 'Virrey', 'Héroes', 'Calle 72',
                   'Calle 57', 'Calle 45', 'Calle 26', 'Calle 19', 'Av. Jiménez', 'Museo del Oro', 'Las Aguas']),
    ('H75',  ARRAY['Portal Usme', 'Molinos', 'Socorro', 'Santa Lucía', 'Calle 40 Sur', 'Quiroga', 'Restrepo',
                   'Hospitales', 'Tercer Milenio', 'Av. Jiménez', 'Calle 26', 'Calle 45', 'Calle 63', 'Héroes',
                   'Calle 100', 'Calle 127', 'Toberín', 'Portal Norte']),
    ('H13',  ARRAY['Portal Usme', 'Molinos', 'Socorro', 'Santa Lucía', 'Calle 40 Sur', 'Quiroga', 'Olaya',
                   'Restrepo', 'Nariño', 'Hortúa', 'Hospitales', 'Tercer Milenio']),
    ('H20',  ARRAY['Portal Tunal', 'Parque', 'Biblioteca', 'Calle 40 Sur', 'Quiroga', 'Olaya', 'Restrepo',
                   'Nariño', 'Hortúa', 'Hospitales', 'Tercer Milenio', 'Av. Jiménez', 'Calle 19', 'Calle 26']),
    ('H54',  ARRAY['Portal Tunal', 'Biblioteca', 'Calle 40 Sur', 'Restrepo', 'Hospitales', 'Av. Jiménez',
                   'Calle 26', 'Marly', 'Calle 57', 'Flores', 'Calle 72', 'Héroes']),
    ('D20',  ARRAY['Portal 80', 'Quirigua', 'Carrera 90', 'Av. Ciudad de Cali', 'Boyacá', 'Av. 68', 'Polo',
                   'Héroes', 'Calle 72', 'Calle 57', 'Calle 45', 'Calle 26', 'Calle 19', 'Av. Jiménez']),
    ('D24',  ARRAY['Portal 80', 'Quirigua', 'Carrera 90', 'Av. Ciudad de Cali', 'Minuto de Dios', 'Boyacá',
                   'Ferias', 'Av. 68', 'Escuela Militar', 'Polo', 'Héroes']),
    ('D81',  ARRAY['Portal 80', 'Av. Ciudad de Cali', 'Minuto de Dios', 'Ferias', 'Av. 68', 'Escuela Militar',
                   'Av. Chile', 'Simón Bolívar', 'U. Nacional', 'CAD', 'Paloquemao', 'Ricaurte']),
    ('C17',  ARRAY['Portal Suba', 'La Campiña', '21 Ángeles', 'Gratamira', 'Suba - Av. Boyacá', 'Niza - Calle 127',
                   'Shaio', 'Suba - Calle 100', 'Rionegro', 'San Martín', 'Av. Chile', 'Simón Bolívar',
                   'U. Nacional', 'CAD', 'Paloquemao', 'Ricaurte']),
    ('C15',  ARRAY['Portal Suba', 'La Campiña', '21 Ángeles', 'Gratamira', 'Suba - Av. Boyacá', 'Niza - Calle 127',
                   'Shaio', 'Suba - Calle 100', 'Rionegro', 'San Martín']),
    ('C29',  ARRAY['Portal Suba', '21 Ángeles', 'Suba - Av. Boyacá', 'Niza - Calle 127', 'Suba - Calle 100',
                   'San Martín', 'Polo', 'Héroes', 'Calle 72']),
    ('G43',  ARRAY['Portal Sur', 'Madelena', 'Venecia', 'General Santander', 'SENA', 'Comuneros', 'Ricaurte',
                   'Paloquemao', 'CAD', 'U. Nacional', 'Simón Bolívar', 'Av. Chile', 'San Martín',
                   'Suba - Calle 100', 'Niza - Calle 127', 'Gratamira', 'Portal Suba']),
    ('G11',  ARRAY['Portal Sur', 'Perdomo', 'Madelena', 'Sevillana', 'Venecia', 'Alquería', 'General Santander',
                   'SENA', 'Santa Isabel', 'Comuneros', 'Ricaurte']),
    ('G22',  ARRAY['Portal Sur', 'Perdomo', 'Sevillana', 'Alquería', 'General Santander', 'Santa Isabel',
                   'Comuneros', 'Ricaurte', 'De La Sabana', 'Av. Jiménez']),
    ('F23',  ARRAY['Portal Américas', 'Patio Bonito', 'Biblioteca Tintal', 'Banderas', 'Mandalay', 'Marsella',
                   'Pradera', 'Puente Aranda', 'CDS - Carrera 32', 'Ricaurte', 'De La Sabana', 'Av. Jiménez',
                   'Museo del Oro', 'Las Aguas']),
    ('F19',  ARRAY['Portal Américas', 'Patio Bonito', 'Biblioteca Tintal', 'Banderas', 'Mandalay', 'Marsella',
                   'Pradera', 'Puente Aranda', 'CDS - Carrera 32', 'Ricaurte']),
    ('F61',  ARRAY['Portal Américas', 'Banderas', 'Marsella', 'Puente Aranda', 'Ricaurte', 'Paloquemao', 'CAD',
                   'U. Nacional', 'Simón Bolívar', 'Av. Chile', 'Escuela Militar', 'Polo', 'Héroes', 'Calle 85',
                   'Calle 100']),
    ('K23',  ARRAY['Portal Eldorado', 'Modelia', 'Normandía', 'Av. Rojas', 'El Tiempo - Maloka',
                   'Salitre - El Greco', 'CAN - British Council', 'Corferias', 'Ciudad Universitaria',
                   'Centro Memoria', 'Las Aguas']),
    ('K10',  ARRAY['Portal Eldorado', 'Modelia', 'Normandía', 'Av. Rojas', 'El Tiempo - Maloka',
                   'Salitre - El Greco', 'CAN - British Council', 'Corferias', 'Ciudad Universitaria',
                   'Centro Memoria', 'Calle 26']),
    ('M86',  ARRAY['Portal Eldorado', 'Modelia', 'Av. Rojas', 'Salitre - El Greco', 'CAN - British Council',
                   'Corferias', 'Centro Memoria', 'Museo Nacional', 'Las Nieves', 'San Victorino', 'Bicentenario',
                   'Policarpa', 'Ciudad Jardín - UAN', 'Av. 1 de Mayo', 'Country Sur', 'Portal 20 de Julio']),
    ('L10',  ARRAY['Portal 20 de Julio', 'Country Sur', 'Av. 1 de Mayo', 'Ciudad Jardín - UAN', 'Policarpa',
                   'Bicentenario', 'San Victorino', 'Las Nieves', 'Museo Nacional']),
    ('L41',  ARRAY['Portal 20 de Julio', 'Av. 1 de Mayo', 'Policarpa', 'San Victorino', 'Museo Nacional',
                   'Calle 26', 'Calle 45', 'Calle 57', 'Flores', 'Calle 72', 'Héroes', 'Calle 85', 'Calle 100',
                   'Pepe Sierra', 'Calle 127', 'Alcalá', 'Calle 146', 'Mazurén', 'Toberín', 'Portal Norte']),
    ('B23',  ARRAY['Portal Norte', 'Toberín', 'Calle 146', 'Calle 127', 'Calle 100', 'Calle 85', 'Héroes',
                   'Escuela Militar', 'Av. Chile', 'U. Nacional', 'CAD', 'Paloquemao', 'Ricaurte', 'Comuneros',
                   'SENA', 'General Santander', 'Venecia', 'Madelena', 'Portal Sur']),
    ('J24',  ARRAY['Portal 80', 'Av. Ciudad de Cali', 'Boyacá', 'Av. 68', 'Polo', 'Héroes', 'Calle 57',
                   'Calle 26', 'Av. Jiménez', 'Museo del Oro', 'Las Aguas']),
    -- TransMiCable
    ('TMC1', ARRAY['Portal Tunal - TransMiCable', 'Juan Pablo II', 'Manitas', 'Mirador del Paraíso']),
    ('TMC2', ARRAY['20 de Julio - TransMiCable', 'La Victoria', 'Altamira']),
    -- Feeders
    ('16-1',  ARRAY['Portal Norte', 'Cl 170 - Kr 9', 'Verbenal - Cl 187']),
    ('16-4',  ARRAY['Portal Norte', 'Cl 170 - Kr 9', 'Cl 140 - Kr 7', 'Cl 127 - Kr 15']),
    ('16-14', ARRAY['Portal Norte', 'Cl 170 - Kr 58', 'Colina - Cl 138']),
    ('11-3',  ARRAY['Portal Suba', 'Suba Centro - Cl 145', 'Colina - Cl 138']),
    ('11-5',  ARRAY['Portal Suba', 'Tibabuyes - Cl 139', 'Suba Centro - Cl 145']),
    ('10-2',  ARRAY['Portal 80', 'Bolivia - Cl 86', 'Engativá Pueblo - Kr 120']),
    ('10-5',  ARRAY['Portal 80', 'Garcés Navas - Cl 72', 'Cl 72 - Av. Boyacá']),
    ('9-3',   ARRAY['Portal Eldorado', 'Fontibón Centro - Cl 17', 'Av. Centenario - Kr 100']),
    ('9-6',   ARRAY['Portal Eldorado', 'Hayuelos - Cl 20', 'Av. Centenario - Kr 100']),
    ('8-2',   ARRAY['Portal Américas', 'Bosa Recreo - Cl 73 Sur', 'Bosa Centro - Cl 65 Sur']),
    ('8-7',   ARRAY['Portal Américas', 'Corabastos - Kr 80', 'Kennedy Central - Cl 38 Sur']),
    ('7-2',   ARRAY['Portal Sur', 'Av. Bosa - Kr 78', 'Bosa Centro - Cl 65 Sur']),
    ('7-5',   ARRAY['Portal Sur', 'Timiza - Cl 42 Sur', 'Kennedy Central - Cl 38 Sur']),
    ('7-8',   ARRAY['Portal Sur', 'Sierra Morena - Cl 73 Sur', 'Lucero - Kr 17F']),
    ('6-3',   ARRAY['Portal Tunal', 'Meissen - Av. Boyacá', 'Candelaria La Nueva - Cl 60 Sur', 'Lucero - Kr 17F']),
    ('6-6',   ARRAY['Portal Tunal', 'Fátima - Cl 46 Sur', 'Abraham Lincoln - Kr 24']),
    ('1-1',   ARRAY['Portal Usme', 'Santa Librada - Cl 76 Sur', 'Yomasa - Cl 91 Sur', 'Usme Pueblo - Kr 3']),
    ('1-4',   ARRAY['Portal Usme', 'Diana Turbay - Cl 48 Sur', 'Marco Fidel Suárez - Cl 44 Sur']),
    ('4-1',   ARRAY['Portal 20 de Julio', 'San Blas - Cl 11 Sur', 'Av. 1 de Mayo - Kr 3 Este']),
    ('4-3',   ARRAY['Portal 20 de Julio', 'Av. 1 de Mayo - Kr 3 Este', 'Los Libertadores - Cl 52 Sur']),
    -- Zonal SITP
    ('18-3',  ARRAY['Verbenal - Cl 187', 'Cl 170 - Kr 9', 'Cl 153 - Kr 9', 'Cl 140 - Kr 7', 'Cl 127 - Kr 15',
                    'Cl 94 - Kr 15', 'Cl 72 - Kr 7', 'Cl 19 - Kr 7', 'Cl 10 - Kr 7']),
    ('C19',   ARRAY['Tibabuyes - Cl 139', 'Suba Centro - Cl 145', 'Colina - Cl 138', 'Niza - Calle 127',
                    'Cl 94 - Kr 15', 'Cl 68 - Kr 24', 'Galerías - Cl 53', 'Marly', 'Cl 19 - Kr 7']),
    ('E44',   ARRAY['Engativá Pueblo - Kr 120', 'Garcés Navas - Cl 72', 'Cl 72 - Av. Boyacá', 'Cl 68 - Kr 24',
                    'Galerías - Cl 53', 'Paloquemao', 'Voto Nacional - Cl 10']),
    ('T25',   ARRAY['Fontibón Centro - Cl 17', 'Av. Centenario - Kr 100', 'Hayuelos - Cl 20', 'Banderas',
                    'Kennedy Central - Cl 38 Sur', 'Timiza - Cl 42 Sur']),
    ('SE14',  ARRAY['Bosa Recreo - Cl 73 Sur', 'Bosa Centro - Cl 65 Sur', 'Av. Bosa - Kr 78', 'Corabastos - Kr 80',
                    'Kennedy Central - Cl 38 Sur', 'Galán - Cl 6', 'Cl 13 - Kr 50']),
    ('P13',   ARRAY['Usme Pueblo - Kr 3', 'Yomasa - Cl 91 Sur', 'Santa Librada - Cl 76 Sur',
                    'Diana Turbay - Cl 48 Sur', 'Marco Fidel Suárez - Cl 44 Sur', 'Restrepo - Kr 19', 'Hortúa',
                    'Cl 10 - Kr 7']),
    ('190',   ARRAY['Sierra Morena - Cl 73 Sur', 'Lucero - Kr 17F', 'Candelaria La Nueva - Cl 60 Sur',
                    'Meissen - Av. Boyacá', 'Fátima - Cl 46 Sur', 'Abraham Lincoln - Kr 24', 'Restrepo - Kr 19',
                    'Voto Nacional - Cl 10', 'Cl 19 - Kr 7', 'Galerías - Cl 53', 'Cl 72 - Kr 7']),
    ('561',   ARRAY['Los Libertadores - Cl 52 Sur', 'Av. 1 de Mayo - Kr 3 Este', 'San Blas - Cl 11 Sur',
                    'Policarpa', 'Cl 10 - Kr 7', 'Las Aguas']),
    ('C122',  ARRAY['Cl 170 - Kr 58', 'Colina - Cl 138', 'Suba Centro - Cl 145', 'Tibabuyes - Cl 139',
                    'Bolivia - Cl 86', 'Garcés Navas - Cl 72', 'Portal 80']),
    ('E52',   ARRAY['Bolivia - Cl 86', 'Engativá Pueblo - Kr 120', 'Fontibón Centro - Cl 17', 'Hayuelos - Cl 20',
                    'Corabastos - Kr 80', 'Patio Bonito']),
    ('226',   ARRAY['Abraham Lincoln - Kr 24', 'Fátima - Cl 46 Sur', 'General Santander', 'Galán - Cl 6',
                    'Cl 13 - Kr 50', 'Puente Aranda']),
    ('Z7',    ARRAY['Cl 72 - Kr 7', 'Cl 94 - Kr 15', 'Calle 100', 'Cl 127 - Kr 15', 'Cl 140 - Kr 7']),
    ('631',   ARRAY['Timiza - Cl 42 Sur', 'Kennedy Central - Cl 38 Sur', 'Galán - Cl 6', 'Voto Nacional - Cl 10',
                    'Cl 19 - Kr 7'])
),
stop AS (
    SELECT spec.route_code, s.stop_name, s.seq
    FROM spec, unnest(spec.stops) WITH ORDINALITY AS s (stop_name, seq)
)
INSERT INTO route_stops (route_id, stop_sequence, station_id)
SELECT r.route_id, stop.seq, st.station_id
FROM stop
LEFT JOIN routes r ON r.route_code = stop.route_code AND r.route_id BETWEEN 1 AND 61
LEFT JOIN stations st ON st.name = stop.stop_name AND st.station_id BETWEEN 1 AND 155
ORDER BY r.route_id, stop.seq;

-- ---------------------------------------------------------------------------
-- Vehicles: a fixed fleet per route, numbered in route order.
--   trunk  7 per route, biarticulated (250) or articulated (160)  TM-1001...
--   zonal  4 per route, padrón (80) or busetón (50)               SITP-4001...
--   feeder 3 per route (90)                                       AL-7001...
--   cable  10 cabins per line (10)                                CAB-001...
-- Vehicles of suspended routes and every 41st vehicle are out of service.
-- ---------------------------------------------------------------------------
WITH fleet AS (
    SELECT r.route_id, r.route_type, r.is_active AS route_active, k,
           row_number() OVER (ORDER BY r.route_id, k) AS vehicle_id,
           row_number() OVER (PARTITION BY r.route_type ORDER BY r.route_id, k) AS type_no
    FROM routes r
    CROSS JOIN LATERAL generate_series(1, CASE r.route_type WHEN 'trunk' THEN 7 WHEN 'zonal' THEN 4
                                                            WHEN 'feeder' THEN 3 ELSE 10 END) AS k
    WHERE r.route_id BETWEEN 1 AND 61
)
INSERT INTO vehicles (vehicle_id, vehicle_code, route_id, vehicle_type, capacity, is_active)
SELECT vehicle_id,
       CASE route_type
           WHEN 'trunk'  THEN 'TM-'   || (1000 + type_no)
           WHEN 'zonal'  THEN 'SITP-' || (4000 + type_no)
           WHEN 'feeder' THEN 'AL-'   || (7000 + type_no)
           ELSE               'CAB-'  || lpad(type_no::text, 3, '0')
       END,
       route_id,
       CASE route_type
           WHEN 'trunk'  THEN CASE WHEN k % 3 = 0 THEN 'articulated' ELSE 'biarticulated' END
           WHEN 'zonal'  THEN CASE WHEN k % 2 = 1 THEN 'padron' ELSE 'buseton' END
           WHEN 'feeder' THEN 'feeder'
           ELSE               'cabin'
       END,
       CASE route_type
           WHEN 'trunk'  THEN CASE WHEN k % 3 = 0 THEN 160 ELSE 250 END
           WHEN 'zonal'  THEN CASE WHEN k % 2 = 1 THEN 80 ELSE 50 END
           WHEN 'feeder' THEN 90
           ELSE               10
       END,
       route_active AND vehicle_id % 41 <> 0
FROM fleet
ORDER BY vehicle_id
ON CONFLICT (vehicle_id) DO UPDATE SET
    vehicle_code = EXCLUDED.vehicle_code,
    route_id     = EXCLUDED.route_id,
    vehicle_type = EXCLUDED.vehicle_type,
    capacity     = EXCLUDED.capacity,
    is_active    = EXCLUDED.is_active;

-- ---------------------------------------------------------------------------
-- Alerts: active and expired, on stations and on routes. Times are relative
-- to the seed run, so re-running refreshes them.
-- ---------------------------------------------------------------------------
INSERT INTO alerts (alert_id, severity, alert_type, message, station_id, route_id,
                    start_timestamp, end_timestamp, created_at)
SELECT alert_id, severity, alert_type, message, station_id, route_id,
       now() - starts_ago, now() + ends_in, now() - starts_ago
FROM (VALUES
    -- active
    (1::bigint, 'CRITICAL', 'closure',
     'Estación Museo del Oro cerrada por obras de mantenimiento. Use las estaciones Av. Jiménez o Las Aguas.',
     101, NULL::integer, interval '10 days', NULL::interval),
    (2, 'WARNING', 'detour',
     'Ruta H75: desvío por obras en la Av. Caracas entre Calle 40 Sur y Restrepo; demoras de hasta 10 minutos.',
     NULL, 4, interval '2 days', interval '5 days'),
    (3, 'INFO', 'schedule',
     'TransMiCable Ciudad Bolívar amplía su horario los domingos y festivos hasta las 21:00.',
     NULL, 27, interval '1 day', NULL),
    (4, 'WARNING', 'crowding',
     'Alta afluencia de usuarios en Portal Norte. Se recomienda abordar en la estación Toberín.',
     1, NULL, interval '1 hour', interval '3 hours'),
    (5, 'CRITICAL', 'suspension',
     'El servicio J24 Portal 80 - Universidades está suspendido temporalmente.',
     NULL, 26, interval '30 days', NULL),
    -- expired
    (6, 'INFO', 'accessibility',
     'Ascensor fuera de servicio en la estación Calle 26; acceso por la rampa norte.',
     26, NULL, interval '9 days', interval '-7 days'),
    (7, 'WARNING', 'event',
     'Ruta G43: manifestación en la Av. NQS a la altura de Comuneros; la ruta no se detiene en Comuneros.',
     NULL, 14, interval '3 days', interval '-3 days' + interval '4 hours'),
    (8, 'CRITICAL', 'incident',
     'Ruta F23: vagón 2 de Portal Américas cerrado por incidente; ruta detenida temporalmente.',
     5, 17, interval '14 days', interval '-14 days' + interval '90 minutes')
) AS a (alert_id, severity, alert_type, message, station_id, route_id, starts_ago, ends_in)
ON CONFLICT (alert_id) DO UPDATE SET
    severity        = EXCLUDED.severity,
    alert_type      = EXCLUDED.alert_type,
    message         = EXCLUDED.message,
    station_id      = EXCLUDED.station_id,
    route_id        = EXCLUDED.route_id,
    start_timestamp = EXCLUDED.start_timestamp,
    end_timestamp   = EXCLUDED.end_timestamp,
    created_at      = EXCLUDED.created_at;

-- ---------------------------------------------------------------------------
-- Arrivals for the next 60 minutes, regenerated on every run.
--
-- For every active route at every active station it serves: trips leave the
-- first stop every `headway` minutes, reach stop n after n * run_min minutes
-- (both from route_timetable), and trip j is run by vehicle j of the route's
-- active fleet (cycling), so one vehicle can be followed along the route
-- (j counts back from 0 for the runs already under way: floor, not truncation).
-- Within 2 minutes the status is 'arriving'; about one in seven later
-- arrivals is 'delayed'.
-- ---------------------------------------------------------------------------
DELETE FROM arrivals;

WITH served AS (
    SELECT rs.route_id, rs.station_id, rs.stop_sequence::integer AS seq, tt.headway, tt.run_min
    FROM route_stops rs
    JOIN routes r ON r.route_id = rs.route_id AND r.is_active
    JOIN route_timetable tt ON tt.route_id = rs.route_id
    JOIN stations s ON s.station_id = rs.station_id AND s.is_active
),
timed AS (
    SELECT sv.route_id, sv.station_id, m,
           (sv.route_id * 5) % sv.headway + sv.seq * sv.run_min AS first_pass,
           sv.headway,
           (sv.route_id * 17 + sv.seq * 7) % 60 AS sec
    FROM served sv
    CROSS JOIN LATERAL generate_series(((sv.route_id * 5) % sv.headway + sv.seq * sv.run_min) % sv.headway,
                                       59, sv.headway) AS m
),
fleet AS (
    SELECT route_id, array_agg(vehicle_id ORDER BY vehicle_id) AS ids
    FROM vehicles
    WHERE is_active AND route_id IS NOT NULL
    GROUP BY route_id
)
INSERT INTO arrivals (arrival_id, station_id, route_id, vehicle_id, estimated_arrival_time, status)
SELECT row_number() OVER (ORDER BY t.station_id, t.m, t.sec, t.route_id),
       t.station_id,
       t.route_id,
       f.ids[1 + ((floor((t.m - t.first_pass)::numeric / t.headway)::int % cardinality(f.ids)
                   + cardinality(f.ids)) % cardinality(f.ids))],
       now() + make_interval(mins => t.m, secs => t.sec),
       CASE
           WHEN t.m * 60 + t.sec <= 120 THEN 'arriving'
           WHEN (t.route_id * 5 + t.station_id * 3 + t.m) % 7 = 0 THEN 'delayed'
           ELSE 'on_time'
       END
FROM timed t
LEFT JOIN fleet f ON f.route_id = t.route_id;

-- ---------------------------------------------------------------------------
-- Sanity checks on the demo data: a bad edit above aborts the seed.
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(s.name, ', ') INTO bad
    FROM stations s
    WHERE s.station_id BETWEEN 1 AND 155 AND s.is_active
      AND NOT EXISTS (SELECT 1 FROM route_stops rs WHERE rs.station_id = s.station_id);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'demo seed: active stations on no route: %', bad;
    END IF;

    SELECT string_agg(r.route_code, ', ') INTO bad
    FROM routes r
    WHERE r.route_id BETWEEN 1 AND 61
      AND (SELECT count(*) FROM route_stops rs WHERE rs.route_id = r.route_id) NOT BETWEEN 3 AND 20;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'demo seed: routes without 3..20 stops: %', bad;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Identity sequences continue after the explicit ids.
-- ---------------------------------------------------------------------------
SELECT setval(pg_get_serial_sequence('stations', 'station_id'),
              coalesce((SELECT max(station_id) FROM stations), 0) + 1, false);
SELECT setval(pg_get_serial_sequence('routes', 'route_id'),
              coalesce((SELECT max(route_id) FROM routes), 0) + 1, false);
SELECT setval(pg_get_serial_sequence('vehicles', 'vehicle_id'),
              coalesce((SELECT max(vehicle_id) FROM vehicles), 0) + 1, false);
SELECT setval(pg_get_serial_sequence('alerts', 'alert_id'),
              coalesce((SELECT max(alert_id) FROM alerts), 0) + 1, false);
SELECT setval(pg_get_serial_sequence('arrivals', 'arrival_id'),
              coalesce((SELECT max(arrival_id) FROM arrivals), 0) + 1, false);
