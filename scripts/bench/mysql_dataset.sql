-- datasafe benchmark dataset, MariaDB twin of ../shared/bench/make_dataset.sql.
--
-- Usage:   mariadb --init-command="SET @scale = N" <empty database> < scripts/bench/mysql_dataset.sql
--          (or -e "SET @scale = N;<newline>SOURCE scripts/bench/mysql_dataset.sql": the client
--          only recognises SOURCE at the start of a line). Without a positive @scale it stops.
-- Rows:    customers 50 000 x N, orders 200 000 x N, events 300 000 x N (N may be fractional).
-- Needs:   MariaDB 10.6+ (SEQUENCE engine tables such as seq_1_to_N, bulk insert into empty
--          InnoDB tables).
--
-- Same tables, columns, value patterns, foreign keys and secondary indexes as the PostgreSQL
-- reference, with the closest MariaDB types: bigserial -> BIGINT AUTO_INCREMENT,
-- timestamptz -> DATETIME(6) (UTC), jsonb -> JSON (written in PostgreSQL's jsonb text form),
-- order_status -> ENUM, text[] -> TEXT holding the PostgreSQL array literal ('{t1,t2}'),
-- inet -> VARCHAR(45), bytea -> VARBINARY(16). email is VARCHAR(255) because a UNIQUE key
-- on TEXT would need a prefix length. Rows are generated server-side from the SEQUENCE engine;
-- indexes and foreign keys are added after the load (foreign keys without re-validation).

SET NAMES utf8mb4;
SET SESSION time_zone = '+00:00';
SET SESSION foreign_key_checks = 0;
SET SESSION unique_checks = 0;

-- Stop at once when @scale is unset (NULL) or not positive.
CREATE TEMPORARY TABLE scale_check (scale DECIMAL(20, 6) NOT NULL CHECK (scale > 0));
INSERT INTO scale_check VALUES (@scale);
DROP TEMPORARY TABLE scale_check;

SET @n_customers = CAST(ROUND(50000 * @scale) AS UNSIGNED);
SET @n_orders = CAST(ROUND(200000 * @scale) AS UNSIGNED);
SET @n_events = CAST(ROUND(300000 * @scale) AS UNSIGNED);

CREATE TABLE customers (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    email       VARCHAR(255) NOT NULL,
    phone       TEXT,
    ssn         CHAR(11),
    birth_date  DATE,
    street      TEXT,
    city        TEXT,
    zip         VARCHAR(10),
    credit_card VARCHAR(19),
    created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    notes       TEXT,
    prefs       JSON
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE orders (
    id               BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id      BIGINT NOT NULL,
    amount           DECIMAL(12, 2) NOT NULL,
    status           ENUM('new', 'paid', 'shipped', 'cancelled', 'refunded') NOT NULL,
    created_at       DATETIME(6) NOT NULL,
    shipping_address TEXT,
    items            JSON,
    tags             TEXT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE events (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id BIGINT,
    at          DATETIME(6) NOT NULL,
    ip          VARCHAR(45),
    user_agent  TEXT,
    payload     VARBINARY(16)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One transaction per table: with foreign_key_checks and unique_checks off, InnoDB bulk-loads
-- an empty table (table-level undo instead of per-row undo).
START TRANSACTION;
INSERT INTO customers (first_name, last_name, email, phone, ssn, birth_date, street, city,
                       zip, credit_card, created_at, notes, prefs)
SELECT
    ELT(1 + i % 12, 'James', 'Mary', 'John', 'Patricia', 'Robert', 'Jennifer', 'Michael',
        'Linda', 'Élodie', 'Zoë', 'José', 'Łukasz'),
    ELT(1 + i % 10, 'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller',
        'Davis', 'O''Brien', 'Nguyễn'),
    CONCAT('user', i, '.', LEFT(MD5(i), 6), '@example.com'),
    CONCAT('+1-555-', LPAD(i % 10000, 4, '0'), '-', LPAD(i % 997, 3, '0')),
    CONCAT(LPAD(i % 899 + 100, 3, '0'), '-', LPAD(i % 99, 2, '0'), '-', LPAD(i % 9999, 4, '0')),
    DATE '1950-01-01' + INTERVAL (i % 20000) DAY,
    CONCAT(i % 9999, ' ', ELT(1 + i % 5, 'Main', 'Oak', 'Pine', 'Maple', 'Cedar'),
           ' St\tApt ', i % 50),
    ELT(1 + i % 5, 'Springfield', 'Riverside', 'Franklin', 'Greenville', 'Bristol'),
    LPAD(i % 99999, 5, '0'),
    CONCAT('4111 1111 ', LPAD(i % 10000, 4, '0'), ' ', LPAD(i % 7777, 4, '0')),
    TIMESTAMP '2015-01-01 00:00:00' + INTERVAL i MINUTE,
    CASE WHEN i % 7 = 0 THEN NULL
         WHEN i % 11 = 0 THEN ''
         ELSE CONCAT('note with \\backslash and\nnewline ', MD5(i)) END,
    CONCAT('{"lang": "', ELT(1 + i % 3, 'en', 'fr', 'de'), '", "score": ', i % 100,
           ', "newsletter": ', IF(i % 2 = 0, 'true', 'false'), '}')
FROM (SELECT seq AS i FROM seq_1_to_1000000000 WHERE seq <= @n_customers) AS g;
COMMIT;

START TRANSACTION;
INSERT INTO orders (customer_id, amount, status, created_at, shipping_address, items, tags)
SELECT
    1 + i % @n_customers,
    (i * 7919 % 100000) / 100,
    ELT(1 + i % 5, 'new', 'paid', 'shipped', 'cancelled', 'refunded'),
    TIMESTAMP '2016-01-01 00:00:00' + INTERVAL i SECOND,
    CONCAT(i % 9999, ' Elm St, Springfield ', LPAD(i % 99999, 5, '0')),
    CONCAT('[{"qty": ', 1 + i % 4, ', "sku": "SKU-', i % 5000, '"}]'),
    CONCAT('{t', i % 10, ',t', i % 3, '}')
FROM (SELECT seq AS i FROM seq_1_to_1000000000 WHERE seq <= @n_orders) AS g;
COMMIT;

START TRANSACTION;
INSERT INTO events (customer_id, at, ip, user_agent, payload)
SELECT
    1 + i % @n_customers,
    TIMESTAMP '2020-01-01 00:00:00' + INTERVAL i SECOND,
    CONCAT('10.', i % 256, '.', i DIV 256 % 256, '.', i % 200),
    CONCAT('Mozilla/5.0 (X11; Linux x86_64) build/', i % 1000),
    UNHEX(MD5(i))
FROM (SELECT seq AS i FROM seq_1_to_1000000000 WHERE seq <= @n_events) AS g;
COMMIT;

ALTER TABLE customers ADD UNIQUE KEY customers_email_key (email);
ALTER TABLE orders
    ADD KEY orders_customer_id_idx (customer_id),
    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE events
    ADD KEY events_customer_id_idx (customer_id),
    ADD KEY events_at_idx (at),
    ADD CONSTRAINT events_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);

SET SESSION foreign_key_checks = 1;
SET SESSION unique_checks = 1;
ANALYZE TABLE customers, orders, events;
