-- datasafe benchmark dataset with one dominant table: sensor readings (for scripts/bench/run_split.py).
--
-- Usage:   psql -X -v ON_ERROR_STOP=1 -v scale=N -d <empty database> -f scripts/bench/dataset_big.sql
-- Rows:    sites 100, devices 2 000 x N, readings 1 200 000 x N (N may be fractional).
-- Size:    about 150 MB of heap per unit of scale, over 90 % of it in readings (scale 10: a
--          readings table of about 1.5 GB, above datasafe's default split threshold of 1 GiB).
--
-- Every value is derived from the row number, so two loads at the same scale are identical.
-- Text values include tabs, newlines, backslashes, non-ASCII letters, NULL next to ''.

SELECT greatest(1, round(2000 * :scale::numeric))::int AS n_devices,
       round(1200000 * :scale::numeric)::int AS n_readings
\gset

CREATE TABLE sites (
    id      integer PRIMARY KEY,
    name    text NOT NULL,
    country char(2) NOT NULL
);

CREATE TABLE devices (
    id        integer PRIMARY KEY,
    site_id   integer NOT NULL REFERENCES sites (id),
    model     text NOT NULL,
    installed date NOT NULL,
    settings  jsonb
);

CREATE TABLE readings (
    id        bigserial PRIMARY KEY,
    device_id integer NOT NULL REFERENCES devices (id),
    at        timestamptz NOT NULL,
    value     double precision,
    unit      text NOT NULL,
    status    smallint NOT NULL,
    note      text,
    raw       bytea
);

INSERT INTO sites
SELECT n, (ARRAY['Nord', 'Süd', 'Quai', 'Hafen', 'Øst'])[1 + n % 5] || ' ' || n,
       (ARRAY['DE', 'FR', 'NL', 'DK', 'PL'])[1 + n % 5]
FROM generate_series(1, 100) AS n;

INSERT INTO devices
SELECT n, 1 + n % 100, 'model-' || (n % 17) || E'\t' || (ARRAY['α', 'β', 'γ'])[1 + n % 3],
       date '2019-01-01' + n % 1500,
       jsonb_build_object('interval_s', 10 + n % 50, 'calibrated', n % 4 = 0)
FROM generate_series(1, :n_devices) AS n;

INSERT INTO readings (device_id, at, value, unit, status, note, raw)
SELECT 1 + (n - 1) % :n_devices,
       timestamptz '2024-01-01 00:00:00+00' + n * interval '250 milliseconds',
       CASE WHEN n % 997 = 0 THEN NULL ELSE ((n::bigint * 7919) % 100003) / 37.0 END,
       (ARRAY['°C', 'kPa', '%RH', 'ppm'])[1 + n % 4],
       (n % 7)::smallint,
       CASE WHEN n % 5 <> 0 THEN NULL
            WHEN n % 11 = 0 THEN ''
            ELSE 'check ' || (n % 313) || E'\tsensor C:\\s\\' || (n % 89) || E'\n' || left(md5(n::text), 12) END,
       substring(sha256(int8send(n)) FROM 1 FOR 16)
FROM generate_series(1, :n_readings) AS n;

CREATE INDEX ON readings (device_id, at);

ANALYZE;
