-- The change under review: an order status column and a per-customer revenue table.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'paid';

CREATE TABLE IF NOT EXISTS customer_revenue (
    customer_id  integer        PRIMARY KEY REFERENCES customers (id),
    order_count  integer        NOT NULL,
    revenue      numeric(12, 2) NOT NULL,
    refreshed_at timestamptz    NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
