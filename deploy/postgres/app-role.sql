-- One-shot (docker-compose.yml, `db-setup`), run by the Postgres superuser in the service's database
-- on every `docker compose up`: the login role the service connects as, with no more power than its
-- own database needs. It owns that database, its `public` schema and everything in it, so its boot
-- migrations can create and alter tables; it is no superuser and cannot create roles or databases,
-- so the API and the worker cannot reach Temporal's databases or other roles' data in this server.
-- Safe to re-run. Earlier deployments ran the service as the superuser: their tables, sequences and
-- types (and `_prisma_migrations`) are handed over here.
--   psql -v ON_ERROR_STOP=1 -v app_role=repo_connect -v app_password=... -f app-role.sql
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec

ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_password';
-- The service sets its sessions to UTC itself (lib/db.ts); this covers a session opened another way (psql as the role).
ALTER ROLE :"app_role" SET TimeZone = 'UTC';

\set owner :app_role
\ir hand-over.sql
