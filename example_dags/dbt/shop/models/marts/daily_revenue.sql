-- Revenue per day, incremental: a later run recomputes only the days from the newest one on.
{{ config(materialized='incremental', unique_key='order_date') }}

select
    order_date,
    count(*) as order_count,
    sum(amount) as revenue
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where order_date >= (select max(order_date) from {{ this }})
{% endif %}
group by order_date
