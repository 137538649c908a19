-- One-shot (docker-compose.yml, `db-setup`, after app-role.sql), run by the Postgres superuser on
-- every `docker compose up`: the login role the Temporal server and its schema job connect as. It
-- owns Temporal's two databases (created here when missing) and everything in them, so its schema
-- tool can create and upgrade their tables; it is no superuser and cannot create roles or databases,
-- and it cannot connect to the service's database (app-role.sql revokes that from everyone else).
-- Earlier deployments ran Temporal as the superuser: their databases and tables are handed over.
--   psql -v ON_ERROR_STOP=1 -v temporal_role=temporal -v temporal_password=... \
--        -v temporal_db=temporal -v visibility_db=temporal_visibility -f temporal-role.sql
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN', :'temporal_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'temporal_role') \gexec

ALTER ROLE :"temporal_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'temporal_password';

SELECT format('CREATE DATABASE %I OWNER %I', db, :'temporal_role')
FROM unnest(ARRAY[:'temporal_db', :'visibility_db']) AS db
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db) \gexec

\set owner :temporal_role
\connect :"temporal_db"
\ir hand-over.sql
\connect :"visibility_db"
\ir hand-over.sql
