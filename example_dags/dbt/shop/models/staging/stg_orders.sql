select
    id as order_id,
    customer_id,
    amount,
    ordered_at,
    ordered_at::date as order_date
from {{ source('shop', 'orders') }}
