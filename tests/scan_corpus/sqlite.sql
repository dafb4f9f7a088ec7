-- Scan corpus, SQLite: a chinook-shaped media store (genres, media_types, albums, tracks,
-- customers, employees, invoices, invoice_items), an application's users and events (JSON in
-- TEXT), support tickets with attachments, and stored files. Rows come from sqlite.py; labels from
-- labels/sqlite.yaml. Lines marked PLANT put personal data into the schema's own text (SQLite
-- keeps each CREATE statement verbatim, comments included); NEGATIVE marks look-alikes.

CREATE TABLE genres (
    GenreId   INTEGER PRIMARY KEY,
    Name      NVARCHAR(120)
);

CREATE TABLE media_types (
    MediaTypeId  INTEGER PRIMARY KEY,
    Name         NVARCHAR(120)
);

CREATE TABLE albums (
    AlbumId      INTEGER PRIMARY KEY,
    Title        NVARCHAR(160) NOT NULL,
    ReleaseYear  INTEGER,
    Label        NVARCHAR(80)
);

CREATE TABLE tracks (
    TrackId       INTEGER PRIMARY KEY,
    Name          NVARCHAR(200) NOT NULL,
    AlbumId       INTEGER REFERENCES albums (AlbumId),
    MediaTypeId   INTEGER NOT NULL REFERENCES media_types (MediaTypeId),
    GenreId       INTEGER REFERENCES genres (GenreId),
    Milliseconds  INTEGER NOT NULL,
    Bytes         INTEGER,
    UnitPrice     NUMERIC(10,2) NOT NULL,
    Isrc          CHAR(12)  -- NEGATIVE comment: ISRC like USRC17607839
);

-- PLANT check: a phone number in a CHECK constraint
CREATE TABLE customers (
    CustomerId    INTEGER PRIMARY KEY,
    FirstName     NVARCHAR(40) NOT NULL,
    LastName      NVARCHAR(20) NOT NULL,
    SearchName    NVARCHAR(70),            -- maintained by trigger customers_search_name
    Company       NVARCHAR(80),
    Address       NVARCHAR(70),
    City          NVARCHAR(40),
    State         NVARCHAR(40),
    Country       NVARCHAR(40),
    PostalCode    NVARCHAR(10),
    Phone         NVARCHAR(24),
    Fax           NVARCHAR(24),
    Email         NVARCHAR(60) NOT NULL,
    SupportRepId  INTEGER REFERENCES employees (EmployeeId),
    CONSTRAINT customers_phone_not_blocked CHECK (Phone IS NULL OR Phone <> '+44 20 7946 0718')
);

CREATE TRIGGER customers_search_name AFTER INSERT ON customers
BEGIN
    UPDATE customers SET SearchName = upper(NEW.LastName) || ', ' || NEW.FirstName
    WHERE CustomerId = NEW.CustomerId;
END;

-- PLANT SQL comment: the CREATE TABLE text (kept verbatim in sqlite_schema) names the data owner
CREATE TABLE employees (
    -- data owner: Sandra Whitfield <sandra.whitfield@example.com>, HR systems
    EmployeeId  INTEGER PRIMARY KEY,
    LastName    NVARCHAR(20) NOT NULL,
    FirstName   NVARCHAR(20) NOT NULL,
    Title       NVARCHAR(30),
    ReportsTo   INTEGER REFERENCES employees (EmployeeId),
    BirthDate   DATE,
    HireDate    DATE,
    Address     NVARCHAR(70),
    City        NVARCHAR(40),
    State       NVARCHAR(40),
    Country     NVARCHAR(40),
    PostalCode  NVARCHAR(10),
    Phone       NVARCHAR(24),
    Extension   INTEGER,
    Email       NVARCHAR(60),
    Ssn         CHAR(11),
    Iban        NVARCHAR(42),
    Photo       BLOB
);

CREATE TABLE invoices (
    InvoiceId          INTEGER PRIMARY KEY,
    CustomerId         INTEGER NOT NULL REFERENCES customers (CustomerId),
    InvoiceNumber      CHAR(16) NOT NULL,
    InvoiceDate        DATETIME NOT NULL,
    BillingAddress     NVARCHAR(70),
    BillingCity        NVARCHAR(40),
    BillingState       NVARCHAR(40),
    BillingCountry     NVARCHAR(40),
    BillingPostalCode  NVARCHAR(10),
    Total              NUMERIC(10,2) NOT NULL,
    Currency           CHAR(3) NOT NULL
);

CREATE TABLE invoice_items (
    InvoiceLineId  INTEGER PRIMARY KEY,
    InvoiceId      INTEGER NOT NULL REFERENCES invoices (InvoiceId),
    TrackId        INTEGER NOT NULL REFERENCES tracks (TrackId),
    UnitPrice      NUMERIC(10,2) NOT NULL,
    Quantity       INTEGER NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    email          TEXT NOT NULL,
    email_lower    TEXT GENERATED ALWAYS AS (lower(email)) VIRTUAL,
    alias_emails   TEXT,  -- JSON array
    last_login_ip  TEXT,
    last_login_at  TEXT,
    created_at     TEXT NOT NULL,
    external_id    TEXT NOT NULL
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    ts         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    source     TEXT NOT NULL,
    payload    TEXT NOT NULL,  -- JSON
    data_json  TEXT NOT NULL   -- JSON
);

-- PLANT default: a person's e-mail address as a column default
CREATE TABLE tickets (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER REFERENCES customers (CustomerId),
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    escalate_to  TEXT NOT NULL DEFAULT 'laura.schmidt@example.net',
    attachment   BLOB
);

CREATE TABLE files (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    sha256             TEXT NOT NULL,
    size               INTEGER NOT NULL,
    generator_version  TEXT NOT NULL,
    data               BLOB NOT NULL
);

-- PLANT view: a person's address in the WHERE
CREATE VIEW vip_customers AS
    SELECT CustomerId, FirstName, LastName, Email FROM customers
    WHERE Country <> 'France' AND Email <> 'peter.vogel@example.com';

-- NEGATIVE view
CREATE VIEW track_list AS
    SELECT t.TrackId, t.Name, a.Title AS Album, g.Name AS Genre, t.UnitPrice
    FROM tracks t LEFT JOIN albums a USING (AlbumId) LEFT JOIN genres g USING (GenreId);

-- PLANT trigger: a person's address in a trigger body
CREATE TRIGGER tickets_legal_escalation AFTER INSERT ON tickets
WHEN NEW.status = 'legal'
BEGIN
    UPDATE tickets SET escalate_to = 'oncall.lead.mbeki@example.com' WHERE id = NEW.id;
END;

CREATE INDEX ix_invoices_customer ON invoices (CustomerId);
CREATE INDEX ix_tracks_album ON tracks (AlbumId);
