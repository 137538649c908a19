-- One-shot (docker-compose.yml, `db-setup`), run by the Postgres superuser in the service's database
-- on every `docker compose up`: the login role the service connects as, with no more power than its
-- own database needs. It owns that database, its `public` schema and everything in it, so its boot
-- migrations can create and alter tables; it is no superuser and cannot create roles or databases,
-- so the API and the worker cannot reach Temporal's databases or other roles' data in this server.
-- Safe to re-run. Earlier deployments ran the service as the superuser: their tables, sequences and
-- types (and `_prisma_migrations`) are handed over here.
--   psql -v ON_ERROR_STOP=1 -v app_role=repo_connect -v app_password=... -f app-role.sql
\set ON_ERROR_STOP on
-- Handing a table over takes its exclusive lock: behind a running service's long transaction, give
-- up after 5 s (the job fails and compose runs it again) rather than hold up the queries behind it.
SET lock_timeout = '5s';

SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec

ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_password';
-- The service sets its sessions to UTC itself (lib/db.ts); this covers a session opened another way (psql as the role).
ALTER ROLE :"app_role" SET TimeZone = 'UTC';

SELECT format('ALTER DATABASE %I OWNER TO %I', current_database(), :'app_role') \gexec
ALTER SCHEMA public OWNER TO :"app_role";

-- What earlier deployments created as another role. Tables carry their indexes and the sequences
-- their columns own; free-standing sequences, views and types are handed over one by one.
SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, :'app_role')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) <> :'app_role' \gexec

SELECT format('ALTER SEQUENCE %I.%I OWNER TO %I', n.nspname, c.relname, :'app_role')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) <> :'app_role'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')) \gexec

SELECT format('ALTER VIEW %I.%I OWNER TO %I', n.nspname, c.relname, :'app_role')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm') AND pg_get_userbyid(c.relowner) <> :'app_role' \gexec

SELECT format('ALTER TYPE %I.%I OWNER TO %I', n.nspname, t.typname, :'app_role')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND pg_get_userbyid(t.typowner) <> :'app_role'
  AND NOT EXISTS (SELECT FROM pg_class c WHERE c.reltype = t.oid) \gexec

SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, :'app_role')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> :'app_role' \gexec

-- Nobody else may connect to this database or create in it.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
