-- Scan corpus, PostgreSQL: a pagila-shaped store (schema public), an HR schema (hr), and an
-- application's users / events / exports. Rows come from postgresql.py; labels from
-- labels/postgresql.yaml. Lines marked PLANT put personal data into the schema's own text
-- (what `datasafe scan` reports under "schema"); NEGATIVE marks schema text that only looks so.
-- Every e-mail address is at a reserved example domain; every phone number is a fiction number.

CREATE SCHEMA hr;

CREATE TYPE public.mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
-- PLANT enum: one label is a person's e-mail address (no row uses it)
CREATE TYPE public.approval_mode AS ENUM ('auto', 'manager', 'lena.fischer@example.com');
-- PLANT domain: the CHECK names a blocked sender's address
CREATE DOMAIN hr.work_email AS text CHECK (VALUE LIKE '%@%' AND VALUE <> 'blocked.sender@example.net');
-- NEGATIVE domain: a shape rule only
CREATE DOMAIN public.iso_code AS char(2) CHECK (VALUE ~ '^[A-Z]{2}$');

CREATE TABLE public.country (
    country_id   serial PRIMARY KEY,
    country      text NOT NULL,
    iso_code     public.iso_code NOT NULL UNIQUE,
    city_count   integer NOT NULL DEFAULT 0,
    last_update  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.city (
    city_id      serial PRIMARY KEY,
    city         text NOT NULL,
    country_id   integer NOT NULL REFERENCES public.country,
    last_update  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.address (
    address_id   serial PRIMARY KEY,
    address      text NOT NULL,
    address2     text,
    district     text NOT NULL,
    city_id      integer NOT NULL REFERENCES public.city,
    postal_code  text,
    phone        text NOT NULL,
    last_update  timestamptz NOT NULL DEFAULT now(),
    -- PLANT check: a phone number in a CHECK constraint
    CONSTRAINT address_phone_not_blocked CHECK (phone <> '+44 20 7946 0718')
);

CREATE TABLE public.customer (
    customer_id      serial PRIMARY KEY,
    store_id         smallint NOT NULL,
    first_name       text NOT NULL,
    last_name        text NOT NULL,
    email            text,
    email_normalized text GENERATED ALWAYS AS (lower(email)) STORED,
    address_id       integer NOT NULL REFERENCES public.address,
    activebool       boolean NOT NULL DEFAULT true,
    create_date      date NOT NULL,
    last_update      timestamptz DEFAULT now(),
    active           integer
);
-- PLANT comments: a table comment and a column comment that name a person's address
COMMENT ON TABLE public.customer IS 'Customer master data. Data owner: Sandra Whitfield <sandra.whitfield@example.com>';
COMMENT ON COLUMN public.customer.email IS 'Login and receipts. Erasure requests are handled by dpo.office@example.org';
-- NEGATIVE comment
COMMENT ON COLUMN public.customer.store_id IS 'Home store; 1 = Lethbridge, 2 = Woodridge';

CREATE TABLE public.staff (
    staff_id        serial PRIMARY KEY,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    address_id      integer NOT NULL REFERENCES public.address,
    email           text,
    store_id        smallint NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    username        text NOT NULL,
    password        text,
    picture         bytea,
    phone_extension smallint,
    last_update     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.language (
    language_id  serial PRIMARY KEY,
    name         character(20) NOT NULL,
    last_update  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.category (
    category_id  serial PRIMARY KEY,
    name         text NOT NULL,
    last_update  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.film (
    film_id          serial PRIMARY KEY,
    title            text NOT NULL,
    description      text,
    release_year     integer,
    language_id      integer NOT NULL REFERENCES public.language,
    category_id      integer REFERENCES public.category,
    rental_duration  smallint NOT NULL DEFAULT 3,
    rental_rate      numeric(4,2) NOT NULL DEFAULT 4.99,
    length           smallint,
    replacement_cost numeric(5,2) NOT NULL DEFAULT 19.99,
    rating           public.mpaa_rating DEFAULT 'G',
    special_features text[],
    sku              text NOT NULL,
    fulltext         tsvector NOT NULL,
    last_update      timestamptz NOT NULL DEFAULT now()
);
-- NEGATIVE comment: an EAN in a comment is not personal data
COMMENT ON COLUMN public.film.sku IS 'EAN-13 article number, e.g. 4006381333931';
CREATE INDEX film_fulltext_idx ON public.film USING gist (fulltext);
-- fulltext is maintained from title and description (pagila's trigger)
CREATE TRIGGER film_fulltext_trigger BEFORE INSERT OR UPDATE ON public.film
    FOR EACH ROW EXECUTE FUNCTION tsvector_update_trigger(fulltext, 'pg_catalog.english', title, description);

CREATE TABLE public.rental (
    rental_id    serial PRIMARY KEY,
    rental_date  timestamptz NOT NULL,
    inventory_id integer NOT NULL,
    customer_id  integer NOT NULL REFERENCES public.customer,
    return_date  timestamptz,
    staff_id     integer NOT NULL REFERENCES public.staff,
    rental_ref   text NOT NULL,
    last_update  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.payment (
    payment_id   serial PRIMARY KEY,
    customer_id  integer NOT NULL REFERENCES public.customer,
    staff_id     integer NOT NULL REFERENCES public.staff,
    rental_id    integer REFERENCES public.rental,
    amount       numeric(6,2) NOT NULL,
    currency     character(3) NOT NULL,
    payment_date timestamptz NOT NULL,
    card_number  text,
    card_last4   character(4),
    status       text NOT NULL
);

CREATE TABLE public.support_ticket (
    ticket_id          serial PRIMARY KEY,
    customer_id        integer REFERENCES public.customer,
    subject            text NOT NULL,
    body               text NOT NULL,
    body_tsv           tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,
    status             text NOT NULL,
    created_by         text NOT NULL,
    -- PLANT default: a person's e-mail address as a column default
    escalation_contact text NOT NULL DEFAULT 'laura.schmidt@example.net',
    created_at         timestamptz NOT NULL
);
ALTER TABLE public.support_ticket ENABLE ROW LEVEL SECURITY;
-- PLANT policy: a row-level security policy naming a person's address
CREATE POLICY ticket_escalation ON public.support_ticket
    USING (escalation_contact <> 'tom.kline@example.net' OR current_user = 'postgres');

CREATE TABLE hr.departments (
    department_id serial PRIMARY KEY,
    name          text NOT NULL,
    cost_center   character(5) NOT NULL,
    approval      public.approval_mode NOT NULL DEFAULT 'auto',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE hr.employees (
    employee_id     serial PRIMARY KEY,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    display_name    text NOT NULL,
    work_email      hr.work_email NOT NULL,
    private_emails  text[],
    national_id     text,
    iban            text,
    date_of_birth   date NOT NULL,
    phone           text,
    phone_extension smallint,
    hire_date       date NOT NULL,
    job_title       text NOT NULL,
    salary          numeric(10,2) NOT NULL,
    department_id   integer NOT NULL REFERENCES hr.departments,
    manager_id      integer REFERENCES hr.employees,
    contract_pdf    bytea
);
-- NEGATIVE comment
COMMENT ON TABLE hr.employees IS 'One row per employment contract; synced nightly by hr-sync';

CREATE TABLE public.users (
    user_id        serial PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    reset_token    text,
    last_login_ip  inet,
    last_login_at  timestamptz,
    external_id    uuid NOT NULL,
    roles          text[] NOT NULL DEFAULT '{reader}',
    locale         text NOT NULL DEFAULT 'en_US',
    created_at     timestamptz NOT NULL
);

CREATE TABLE public.events (
    event_id    bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    event_type  text NOT NULL,
    actor       text NOT NULL,
    client_ip   inet,
    payload     jsonb NOT NULL,
    meta        jsonb NOT NULL,
    request_id  uuid NOT NULL
);
-- NEGATIVE comment: a private network range is not a person's address
COMMENT ON COLUMN public.events.client_ip IS 'Client address as seen by the load balancer (internal hops from 10.0.0.0/8 removed)';

CREATE TABLE public.documents (
    document_id serial PRIMARY KEY,
    file_name   text NOT NULL,
    mime_type   text NOT NULL,
    sha256      character(64) NOT NULL,
    size_bytes  bigint NOT NULL,
    content     bytea NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- PLANT view: a person's address in the view's WHERE
CREATE VIEW public.vip_customers AS
    SELECT c.customer_id, c.first_name, c.last_name, c.email
    FROM public.customer c
    WHERE c.active = 1 AND c.email <> 'peter.vogel@example.com';

-- NEGATIVE view
CREATE VIEW public.film_list AS
    SELECT f.film_id, f.title, cat.name AS category, f.rental_rate, f.length, f.rating
    FROM public.film f LEFT JOIN public.category cat USING (category_id);

-- PLANT function: a person's address in a function body
CREATE FUNCTION public.notify_data_owner(subject text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'mailto:anna.berg@example.org?subject=' || subject $$;

-- NEGATIVE function
CREATE FUNCTION public.film_in_stock(p_film_id integer) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT EXISTS (SELECT 1 FROM public.rental r WHERE r.inventory_id = p_film_id AND r.return_date IS NOT NULL) $$;
