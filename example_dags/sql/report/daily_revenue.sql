-- Revenue per country for the day ending at the data interval's end, read from a branch taken at
-- that moment (so late writes on main after midnight cannot change the report).
SELECT c.country,
       count(o.id)::integer               AS orders,
       coalesce(sum(o.amount), 0)::float8 AS revenue
FROM customers AS c
LEFT JOIN orders AS o
       ON o.customer_id = c.id
      AND o.ordered_at <  '{{ report_end() }}'::timestamptz
      AND o.ordered_at >= '{{ report_end() }}'::timestamptz - interval '{{ params.window_days }} days'
GROUP BY c.country
ORDER BY c.country;
