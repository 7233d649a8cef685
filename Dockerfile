# One image for every service; the command picks which one runs:
#   docker run IMAGE                                  the collector (the default command)
#   docker run IMAGE node services/consumer/main.ts   consumer (also query, refresher, demo)
#   docker run IMAGE node clickhouse/migrate.ts       the migrations, as a one-shot job
# The services run their TypeScript directly on Node 24 (type stripping, no tsc build), as they do
# outside a container. The Node version is the `node` devDependency's, the one the tests run on
# (deploy/docker/image.test.ts holds the two equal); bump both together.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Production dependencies only. None of them has an install script (image.test.ts checks the lock
# file), so scripts stay off.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
  && npm cache clean --force

# The dashboard bundle: esbuild is a devDependency, so it runs here and only its output moves on.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts on, as deploy/local/bootstrap.sh installs: the `node` devDependency's puts its
# binary in place, which npm scripts then find first on PATH.
RUN npm ci --no-audit --no-fund --loglevel=error
COPY services ./services
# npm scripts run through bootstrap.sh, which installs first unless its stamp says that is done.
COPY deploy/local/bootstrap.sh ./deploy/local/bootstrap.sh
RUN touch node_modules/.install-stamp && npm run build:dashboard

FROM ${NODE_IMAGE} AS runtime
# Memory settings of every service: deploy/process-env.ts (why, and the test that keeps them equal).
ENV NODE_ENV=production NODE_OPTIONS=--max-semi-space-size=16
WORKDIR /app
# Owned by root and read-only to the service user: the running process cannot change its code.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
COPY schemas ./schemas
COPY clickhouse ./clickhouse
COPY services ./services
COPY deploy/docker/healthcheck.ts ./deploy/docker/healthcheck.ts
COPY --from=build /app/services/query/dashboard/dist ./services/query/dashboard/dist
# The image's own unprivileged user (uid 1000); Kubernetes' runAsNonRoot needs the numeric id.
USER 1000:1000
# Every service listens on 127.0.0.1 by default; a container sets HOST / *_HTTP_HOST to 0.0.0.0.
EXPOSE 8080 8081 9464 9465
# Liveness of whichever service runs here (each answers /healthz on its own port); compose and
# Kubernetes use /readyz on the known port for readiness.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "deploy/docker/healthcheck.ts"]
CMD ["node", "services/collector/main.ts"]
