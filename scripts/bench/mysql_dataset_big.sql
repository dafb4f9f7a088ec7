-- datasafe benchmark dataset with one dominant table, MariaDB twin of scripts/bench/dataset_big.sql.
--
-- Usage:   mariadb -e "SET @scale = N;<newline>SOURCE scripts/bench/mysql_dataset_big.sql" <empty database>
--          (the client only recognises SOURCE at the start of a line). Without a positive @scale it stops.
-- Rows:    sites 100, devices 2 000 x N, readings 1 200 000 x N (N may be fractional).
-- Needs:   MariaDB 10.6+ (SEQUENCE engine tables such as seq_1_to_N).
--
-- Same tables, columns, value patterns and keys as the PostgreSQL generator, with the closest
-- MariaDB types: bigserial -> BIGINT AUTO_INCREMENT, timestamptz -> DATETIME(3) (UTC),
-- jsonb -> JSON, bytea -> VARBINARY(16). Keys are added after the load.

SET NAMES utf8mb4;
SET SESSION time_zone = '+00:00';
SET SESSION foreign_key_checks = 0;
SET SESSION unique_checks = 0;

CREATE TEMPORARY TABLE scale_check (scale DECIMAL(20, 6) NOT NULL CHECK (scale > 0));
INSERT INTO scale_check VALUES (@scale);
DROP TEMPORARY TABLE scale_check;

SET @n_devices = GREATEST(1, CAST(ROUND(2000 * @scale) AS UNSIGNED));
SET @n_readings = CAST(ROUND(1200000 * @scale) AS UNSIGNED);

CREATE TABLE sites (
    id      INT NOT NULL PRIMARY KEY,
    name    TEXT NOT NULL,
    country CHAR(2) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE devices (
    id        INT NOT NULL PRIMARY KEY,
    site_id   INT NOT NULL,
    model     TEXT NOT NULL,
    installed DATE NOT NULL,
    settings  JSON
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE readings (
    id        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id INT NOT NULL,
    at        DATETIME(3) NOT NULL,
    value     DOUBLE,
    unit      VARCHAR(8) NOT NULL,
    status    SMALLINT NOT NULL,
    note      TEXT,
    raw       VARBINARY(16)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

INSERT INTO sites
SELECT seq, CONCAT(ELT(1 + seq % 5, 'Nord', 'Süd', 'Quai', 'Hafen', 'Øst'), ' ', seq),
       ELT(1 + seq % 5, 'DE', 'FR', 'NL', 'DK', 'PL')
FROM seq_1_to_100;

INSERT INTO devices
SELECT seq, 1 + seq % 100, CONCAT('model-', seq % 17, '\t', ELT(1 + seq % 3, 'α', 'β', 'γ')),
       DATE '2019-01-01' + INTERVAL (seq % 1500) DAY,
       CONCAT('{"calibrated": ', IF(seq % 4 = 0, 'true', 'false'), ', "interval_s": ', 10 + seq % 50, '}')
FROM seq_1_to_1000000000 WHERE seq <= @n_devices;

START TRANSACTION;
INSERT INTO readings (device_id, at, value, unit, status, note, raw)
SELECT 1 + (seq - 1) % @n_devices,
       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (seq * 250000) MICROSECOND,
       IF(seq % 997 = 0, NULL, ((seq * 7919) % 100003) / 37.0),
       ELT(1 + seq % 4, '°C', 'kPa', '%RH', 'ppm'),
       seq % 7,
       CASE WHEN seq % 5 <> 0 THEN NULL
            WHEN seq % 11 = 0 THEN ''
            ELSE CONCAT('check ', seq % 313, '\tsensor C:\\s\\', seq % 89, '\n', LEFT(MD5(seq), 12)) END,
       LEFT(UNHEX(SHA2(seq, 256)), 16)
FROM seq_1_to_1000000000 WHERE seq <= @n_readings;
COMMIT;

ALTER TABLE devices ADD CONSTRAINT devices_site_id_fkey FOREIGN KEY (site_id) REFERENCES sites (id);
ALTER TABLE readings
    ADD KEY readings_device_id_at_idx (device_id, at),
    ADD CONSTRAINT readings_device_id_fkey FOREIGN KEY (device_id) REFERENCES devices (id);

SET SESSION foreign_key_checks = 1;
SET SESSION unique_checks = 1;
ANALYZE TABLE sites, devices, readings;
