-- datasafe benchmark dataset: a synthetic shop database (customers, orders, events).
--
-- Usage:   psql -X -v ON_ERROR_STOP=1 -v scale=N -d <empty database> -f scripts/bench/dataset.sql
-- Rows:    customers 50 000 x N, orders 200 000 x N, events 300 000 x N
--          (N may be fractional: 0.1 gives 5 000 / 20 000 / 30 000 rows).
-- Size:    about 120 MB of heap + indexes per unit of scale.
--
-- Every value is derived from the row number, so two loads at the same scale are identical.
-- The values deliberately include what dump/restore code tends to get wrong: non-ASCII
-- names, backslashes, newlines and tabs inside text, NULL next to '', jsonb, enums,
-- arrays, inet and binary payloads.

SELECT round(50000 * :scale::numeric)::int AS n_customers,
       round(200000 * :scale::numeric)::int AS n_orders,
       round(300000 * :scale::numeric)::int AS n_events
\gset

CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled', 'refunded');

CREATE TABLE customers (
    id          bigserial PRIMARY KEY,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    email       text NOT NULL UNIQUE,
    phone       text,
    ssn         char(11),
    birth_date  date,
    street      text,
    city        text,
    zip         varchar(10),
    credit_card varchar(19),
    created_at  timestamptz NOT NULL DEFAULT now(),
    notes       text,
    prefs       jsonb
);

CREATE TABLE orders (
    id               bigserial PRIMARY KEY,
    customer_id      bigint NOT NULL REFERENCES customers (id),
    amount           numeric(12, 2) NOT NULL,
    status           order_status NOT NULL,
    created_at       timestamptz NOT NULL,
    shipping_address text,
    items            jsonb,
    tags             text[]
);

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    customer_id bigint REFERENCES customers (id),
    at          timestamptz NOT NULL,
    ip          inet,
    user_agent  text,
    payload     bytea
);

-- customers ------------------------------------------------------------------
-- Values are mostly periodic functions of the row number n, like the shared reference
-- generator's, so that both compress alike; emails stay unique through n itself.
INSERT INTO customers (first_name, last_name, email, phone, ssn, birth_date, street, city,
                       zip, credit_card, created_at, notes, prefs)
SELECT
    (ARRAY['Olivia', 'Noah', 'Amelia', 'Liam', 'Sophia', 'Lucas',
           'Chloé', 'Björn', 'Ingrid', 'Mateo', 'Søren', 'Ayşe'])[1 + (n * 5) % 12],
    (ARRAY['Müller', 'Kowalski', 'Rossi', 'Dubois', 'Hansen',
           'Tanaka', 'D''Angelo', 'Åström', 'Ivanova', 'Kim'])[1 + (n * 3) % 10],
    'cust' || n || '.' || lpad(to_hex(n * 2654435761 % 16777216), 6, '0') || '@example.net',
    '+44 20 ' || lpad((n % 10000)::text, 4, '0') || ' ' || lpad((n % 9973)::text, 4, '0'),
    to_char((100 + n % 900) * 1000000 + (n % 97) * 10000 + n % 9973, 'FM000"-"00"-"0000'),
    date '1945-03-01' + n % 24000,
    (1 + n % 4000) || ' ' || (ARRAY['Mill', 'Ash', 'Quay', 'Birch', 'Cross'])[1 + n % 5]
        || E' Rd\tFl ' || (n % 80),
    (ARRAY['Manchester', 'São Paulo', 'Kraków', 'Rotterdam', 'Brisbane'])[1 + (n * 7) % 5],
    lpad(((n + 10000) % 100000)::text, 5, '0'),
    '5500 ' || lpad((n % 7919)::text, 4, '0') || ' ' || lpad((n % 9001)::text, 4, '0')
        || ' ' || lpad((n % 10000)::text, 4, '0'),
    timestamptz '2014-06-01 08:00:00+00' + n * interval '90 seconds',
    CASE
        WHEN n % 8 = 0 THEN NULL
        WHEN n % 13 = 0 THEN ''
        ELSE 'called about order; path C:\orders\' || (n % 977) || E'\n'
             || 'ref ' || left(encode(sha256(int4send(n)), 'hex'), 24)
    END,
    jsonb_build_object('weekly_digest', n % 3 = 0, 'tz', (ARRAY['UTC', 'CET', 'JST'])[1 + n % 3],
                       'level', (n * 7) % 50)
FROM generate_series(1, :n_customers) AS n;

-- orders ---------------------------------------------------------------------
INSERT INTO orders (customer_id, amount, status, created_at, shipping_address, items, tags)
SELECT
    1 + (n - 1) % :n_customers,
    (n::bigint * 104729 % 99991) / 100.0,
    (enum_range(NULL::order_status))[1 + (n * 7) % 5],
    timestamptz '2017-03-01 00:00:00+00' + n * interval '1 second',
    (1 + (n - 1) % 9000) || ' Quay Lane, Rotterdam ' || lpad((n % 100000)::text, 5, '0'),
    jsonb_build_array(jsonb_build_object('sku', 'P-' || n % 4000, 'qty', 1 + n % 5)),
    ARRAY[(ARRAY['eu', 'us', 'vip', 'b2b'])[1 + n % 4], 'w' || (n % 5)]
FROM generate_series(1, :n_orders) AS n;

-- events ---------------------------------------------------------------------
INSERT INTO events (customer_id, at, ip, user_agent, payload)
SELECT
    1 + (n - 1) % :n_customers,
    timestamptz '2021-05-01 00:00:00+00' + n * interval '1 second',
    inet '10.0.0.0' + (n % 251) * 65536 + (n / 251 % 256) * 256 + n % 199,
    (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64) rv/',
           'Mozilla/5.0 (Macintosh; Mac OS X 14) rv/',
           'Mozilla/5.0 (Android 14; Mobile) app/'])[1 + n / 1000 % 3] || (n % 500),
    substring(sha256(int8send(n)) FROM 1 FOR 16)
FROM generate_series(1, :n_events) AS n;

CREATE INDEX ON orders (customer_id);
CREATE INDEX ON events (customer_id);
CREATE INDEX ON events (at);

ANALYZE;
