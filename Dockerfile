# syntax=docker/dockerfile:1
# One image for every role (ROLE=api | worker | all). The service runs its TypeScript through tsx,
# exactly as `npm start` and the tests do: there is no compile step whose output could drift from
# what was tested, and tsx's esbuild transform costs well under a second at boot. The one build
# that pays off, Temporal's workflow bundle (webpack, seconds), is made at image build time.

# Node 24 (LTS): Node 20 reached its end of life in April 2026 and gets no security fixes. The whole
# suite passes on both (`npm test` under Node 24.22.3: 1,080 of 1,081 before the one fix it needed,
# lib/temporal.ts usesAsyncContextFrame); development machines may stay on 20.19 or later.
ARG NODE_VERSION=24

# --- build: all dependencies, the generated Prisma client, then only what runs ---------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
ENV CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1 npm_config_update_notifier=false npm_config_fund=false
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
# The Prisma CLI (a dev dependency) generates prisma/generated; it is not needed afterwards. The
# workflow bundle is built here too, so worker containers start without running webpack.
RUN npx tsx scripts/prepare.ts \
 && npx tsx -e "require('./activities/workflow-bundle').prebuiltWorkflowBundle()" \
 && npm prune --omit=dev && npm cache clean --force

# --- runtime ---------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim
WORKDIR /app
# Listen on every interface inside the container; production demands PUBLIC_URL (see .env.example).
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 WORKER_METRICS_PORT=9464 npm_config_update_notifier=false
# Two malloc arenas instead of up to 8 per core: a worker's native threads keep far less freed
# memory (lib/process-tuning.ts).
ENV MALLOC_ARENA_MAX=2
# The build id the worker reports to Temporal (Worker Versioning, activities/worker-deployment.ts):
# docker compose passes BUILD_ID (e.g. the git commit); without it the worker uses the workflow code's hash.
ARG BUILD_ID=
ENV TEMPORAL_BUILD_ID=${BUILD_ID}
# Owned by root and read-only for the service user, except .cache (the workflow bundle, rebuilt
# there only if the sources ever differ from the one built above).
COPY --from=build /app /app
RUN chown -R node:node /app/.cache
USER node
EXPOSE 8080 9464
# api/all: GET /healthz (Postgres and Temporal answer); worker: GET /healthz on its metrics port (those, and its workers running).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["node", "scripts/healthcheck.mjs"]
# Node is PID 1 and gets SIGTERM itself: the service closes the API, drains the worker (up to
# 20 s for running activities) and exits 0. Give it `stop_grace_period` > 20 s.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "bin/repo-connect.ts"]
