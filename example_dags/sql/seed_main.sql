-- What "production" (the default branch, main) holds in the examples: customers and their orders.
-- The main job and the tests load this into main before running the example DAGs.
CREATE TABLE IF NOT EXISTS customers (
    id      integer PRIMARY KEY,
    name    text    NOT NULL,
    country text    NOT NULL,
    -- personal data: the anonymized preview example masks it (example_jambo_anonymized_preview.py)
    email   text    NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
    id          integer        PRIMARY KEY,
    customer_id integer        NOT NULL REFERENCES customers (id),
    amount      numeric(10, 2) NOT NULL,
    ordered_at  timestamptz    NOT NULL
);

INSERT INTO customers (id, name, country, email) VALUES
    (1, 'Ada', 'GB', 'ada.lovelace@analytical-engines.example'),
    (2, 'Grace', 'US', 'grace.hopper@cobol.example'),
    (3, 'Edsger', 'NL', 'e.w.dijkstra@eindhoven.example'),
    (4, 'Barbara', 'US', 'barbara.liskov@mit.example')
ON CONFLICT (id) DO NOTHING;

INSERT INTO orders (id, customer_id, amount, ordered_at) VALUES
    (1, 1, 120.00, '2026-11-20 09:15:00+00'),
    (2, 1,  35.50, '2026-11-21 14:02:00+00'),
    (3, 2, 980.00, '2026-11-21 16:40:00+00'),
    (4, 3,  12.99, '2026-11-22 08:05:00+00'),
    (5, 4, 250.00, '2026-11-23 11:30:00+00'),
    (6, 2,  64.10, '2026-11-24 19:45:00+00')
ON CONFLICT (id) DO NOTHING;
