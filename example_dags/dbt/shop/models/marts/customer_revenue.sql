-- Revenue per customer, with the customer's sales region.
select
    c.customer_id,
    c.customer_name,
    c.region,
    count(o.order_id) as order_count,
    coalesce(sum(o.amount), 0) as revenue
from {{ ref('stg_customers') }} as c
left join {{ ref('stg_orders') }} as o on o.customer_id = c.customer_id
group by c.customer_id, c.customer_name, c.region
