-- Register Dredge's Delta tables in Unity Catalog (run once per target, after the first
-- `dredge refresh-ownership` and `dredge stream` runs created them). Replace the catalog,
-- schema and location (= the bundle's var.catalog / var.schema / var.tables_root).
-- The location must be inside a UC external location the job's principal can WRITE FILES to.
CREATE SCHEMA IF NOT EXISTS main.dredge;
CREATE VOLUME IF NOT EXISTS main.dredge.state;  -- checkpoints, snapshots, DQ results
CREATE TABLE IF NOT EXISTS main.dredge.flows_enriched   LOCATION 's3://my-dredge-bucket/dredge/data/enriched';
CREATE TABLE IF NOT EXISTS main.dredge.flows_quarantine LOCATION 's3://my-dredge-bucket/dredge/data/quarantine';
CREATE TABLE IF NOT EXISTS main.dredge.flows_pending    LOCATION 's3://my-dredge-bucket/dredge/data/pending';
CREATE TABLE IF NOT EXISTS main.dredge.ip_ownership     LOCATION 's3://my-dredge-bucket/dredge/data/ownership';
CREATE TABLE IF NOT EXISTS main.dredge.cidr_labels      LOCATION 's3://my-dredge-bucket/dredge/data/cidr_labels';
