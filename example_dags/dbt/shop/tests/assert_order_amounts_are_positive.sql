-- A refund booked as a negative order breaks revenue: every order amount must be positive.
select order_id, amount
from {{ ref('stg_orders') }}
where amount <= 0
