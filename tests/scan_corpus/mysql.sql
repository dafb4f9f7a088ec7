-- Scan corpus, MySQL/MariaDB: a web shop (countries, customers, addresses, genres, products,
-- orders, payments), HR (employees, staff_photos), an application's users and audit_log, and
-- support notes. Rows come from mysql.py; labels from labels/mysql.yaml. Lines marked PLANT put
-- personal data into the schema's own text; NEGATIVE marks schema text that only looks so.
-- Runs as is with the mariadb client (DELIMITER); mysql.py splits it the same way.

CREATE TABLE countries (
    iso2          CHAR(2) NOT NULL PRIMARY KEY,
    iso3          CHAR(3) NOT NULL,
    name          VARCHAR(64) NOT NULL,
    phone_prefix  VARCHAR(6) NOT NULL COMMENT 'international calling code, e.g. +44',
    currency      CHAR(3) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='ISO 3166 reference data';

-- PLANT table comment, column comment and CHECK
CREATE TABLE customers (
    id             INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    first_name     VARCHAR(60) NOT NULL,
    last_name      VARCHAR(60) NOT NULL,
    email          VARCHAR(190) NOT NULL COMMENT 'Login e-mail; erasure requests go to dpo.office@example.org',
    email_lower    VARCHAR(190) AS (LOWER(email)) STORED,
    phone          VARCHAR(32),
    birth_date     DATE,
    vat_number     VARCHAR(20) NULL COMMENT 'business customers only',
    signup_ip      VARCHAR(45),
    country_code   CHAR(2) NOT NULL,
    newsletter     TINYINT(1) NOT NULL DEFAULT 0,
    loyalty_points INT NOT NULL DEFAULT 0,
    created_at     DATETIME NOT NULL,
    UNIQUE KEY uq_customers_email (email),
    CONSTRAINT chk_phone_not_blocked CHECK (phone <> '+44 20 7946 0718')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
  COMMENT='Customer master data. Data owner: Sandra Whitfield <sandra.whitfield@example.com>';

CREATE TABLE addresses (
    id            INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id   INT NOT NULL,
    street        VARCHAR(120) NOT NULL,
    zip           VARCHAR(12) NOT NULL,
    city          VARCHAR(80) NOT NULL,
    district      VARCHAR(80) NOT NULL,
    country_code  CHAR(2) NOT NULL,
    is_default    TINYINT(1) NOT NULL DEFAULT 1,
    KEY ix_addresses_customer (customer_id),
    CONSTRAINT fk_addresses_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE genres (
    id         INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(40) NOT NULL,
    slug       VARCHAR(40) NOT NULL,
    parent_id  INT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE products (
    id            INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sku           VARCHAR(16) NOT NULL COMMENT 'EAN/GTIN, e.g. 4006381333931',
    name          VARCHAR(120) NOT NULL,
    description   TEXT,
    genre_id      INT NOT NULL,
    price         DECIMAL(10,2) NOT NULL,
    currency      CHAR(3) NOT NULL,
    weight_grams  INT NOT NULL,
    bin_quantity  INT NOT NULL COMMENT 'units in the picking bin',
    search_text   TEXT AS (CONCAT(name, ' ', IFNULL(description, ''))) STORED,
    FULLTEXT KEY ft_products_search (search_text)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- PLANT enum: one label of `approval` is a person's e-mail address (no row uses it)
CREATE TABLE orders (
    id               INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_number     CHAR(16) NOT NULL,
    customer_id      INT NOT NULL,
    status           VARCHAR(16) NOT NULL,
    approval         ENUM('auto', 'manual', 'karl.huber@example.org') NOT NULL DEFAULT 'auto',
    ordered_at       DATETIME NOT NULL,
    shipped_at       DATETIME NULL,
    total            DECIMAL(10,2) NOT NULL,
    currency         CHAR(3) NOT NULL,
    shipping_name    VARCHAR(120) NOT NULL,
    shipping_address VARCHAR(255) NOT NULL,
    cc_emails        JSON NULL,
    items            JSON NOT NULL,
    UNIQUE KEY uq_orders_number (order_number),
    KEY ix_orders_customer (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE payments (
    id           INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id     INT NOT NULL,
    method       ENUM('card', 'sepa', 'invoice', 'voucher') NOT NULL,
    amount       DECIMAL(10,2) NOT NULL,
    card_number  VARCHAR(23) NULL,
    card_holder  VARCHAR(120) NULL,
    iban         VARCHAR(42) NULL,
    paid_at      DATETIME NOT NULL,
    status       VARCHAR(12) NOT NULL,
    http_status  SMALLINT NOT NULL COMMENT 'status code of the PSP callback',
    KEY ix_payments_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE employees (
    emp_no           INT NOT NULL PRIMARY KEY,
    first_name       VARCHAR(60) NOT NULL,
    last_name        VARCHAR(60) NOT NULL,
    email            VARCHAR(190) NOT NULL,
    birth_date       DATE NOT NULL,
    hire_date        DATE NOT NULL,
    national_id      VARCHAR(20) NULL,
    tax_country      CHAR(2) NOT NULL,
    iban             VARCHAR(42) NULL,
    phone            VARCHAR(32) NULL,
    phone_extension  SMALLINT NULL,
    title            VARCHAR(60) NOT NULL,
    salary           DECIMAL(10,2) NOT NULL,
    manager_emp_no   INT NULL,
    department       VARCHAR(40) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='synced nightly by hr-sync';

CREATE TABLE staff_photos (
    id           INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    emp_no       INT NOT NULL,
    photo        MEDIUMBLOB NOT NULL,
    mime_type    VARCHAR(32) NOT NULL,
    sha256       CHAR(64) NOT NULL,
    uploaded_at  DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE users (
    id             INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username       VARCHAR(40) NOT NULL,
    password_hash  VARCHAR(120) NOT NULL,
    last_login_ip  VARCHAR(45) NULL,
    last_login_at  DATETIME NULL,
    role           VARCHAR(16) NOT NULL,
    created_by     VARCHAR(40) NOT NULL,
    api_client_id  CHAR(36) NOT NULL,
    UNIQUE KEY uq_users_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE audit_log (
    id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    occurred_at   DATETIME(3) NOT NULL,
    actor_service VARCHAR(40) NOT NULL,
    action        VARCHAR(40) NOT NULL,
    entity        VARCHAR(40) NOT NULL,
    entity_id     INT NOT NULL,
    payload       JSON NOT NULL,
    context       JSON NOT NULL,
    request_uuid  CHAR(36) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- PLANT default: a person's e-mail address as a column default
CREATE TABLE support_notes (
    id           INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id  INT NOT NULL,
    note         TEXT NOT NULL,
    escalate_to  VARCHAR(190) NOT NULL DEFAULT 'laura.schmidt@example.net',
    created_at   DATETIME NOT NULL,
    channel      VARCHAR(10) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- PLANT view: a person's address in the WHERE
CREATE VIEW vip_customers AS
    SELECT id, first_name, last_name, email FROM customers
    WHERE loyalty_points > 5000 AND email <> 'peter.vogel@example.com';

-- NEGATIVE view
CREATE VIEW product_list AS
    SELECT p.id, p.name, g.name AS genre, p.price, p.currency FROM products p JOIN genres g ON g.id = p.genre_id;

DELIMITER $$

-- PLANT routine: a person's address in a procedure body
CREATE PROCEDURE notify_data_owner(IN subject VARCHAR(200))
BEGIN
    SELECT CONCAT('mailto:anna.berg@example.org?subject=', subject) AS link;
END$$

-- PLANT trigger: a person's address in a trigger body
CREATE TRIGGER support_notes_escalation BEFORE INSERT ON support_notes
FOR EACH ROW
BEGIN
    IF NEW.channel = 'legal' THEN
        SET NEW.escalate_to = 'oncall.lead.mbeki@example.com';
    END IF;
END$$

-- NEGATIVE routine
CREATE FUNCTION order_total_with_vat(total DECIMAL(10,2), rate DECIMAL(4,2)) RETURNS DECIMAL(10,2)
DETERMINISTIC
BEGIN
    RETURN ROUND(total * (1 + rate / 100), 2);
END$$

DELIMITER ;
