-- Rebuild customer_revenue from orders. The last statement's result (rows written) is the task's XCom.
{% if params.inject_bad_data %}
-- params.inject_bad_data: simulate a broken upstream load (a refund booked as a negative order).
-- Only this run's branch sees it; main is untouched.
INSERT INTO orders (id, customer_id, amount, ordered_at, status)
VALUES (1001, 3, -500.00, now(), 'paid');
{% endif %}
DELETE FROM customer_revenue;
INSERT INTO customer_revenue (customer_id, order_count, revenue)
SELECT customer_id, count(*), sum(amount)
FROM orders
WHERE status = 'paid'
GROUP BY customer_id;
SELECT count(*) AS rows_transformed FROM customer_revenue;
