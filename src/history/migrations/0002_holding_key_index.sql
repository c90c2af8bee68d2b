-- Schema 2: an index on each holding's key, so a diff finds what one snapshot has and the other
-- lacks by lookups (NOT EXISTS) instead of sorting both snapshots; also serves "did this person
-- hold anything in the other snapshot" by its (snapshot_id, holder_key) prefix.

CREATE INDEX snapshot_holdings_key ON snapshot_holdings (snapshot_id, holder_key, holder_kind, provider, product_id);
