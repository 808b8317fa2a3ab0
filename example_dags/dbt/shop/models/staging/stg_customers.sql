-- Customers without their personal data (analytics needs the region, not the e-mail address).
select
    c.id as customer_id,
    c.name as customer_name,
    c.country,
    r.region
from {{ source('shop', 'customers') }} as c
left join {{ ref('country_regions') }} as r on r.country = c.country
